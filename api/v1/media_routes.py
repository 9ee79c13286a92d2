"""照片与语音: staff upload a photo (POST /media) and name its id in progress or resolve; the bytes of any medium
(GET /media/<id>) for whoever may see its order, with their token or with the signed link the order view gives.

The rules (what may be uploaded, who may read what) are OrderService's (orders/evidence.py); this door reads the
multipart body, checks a link's signature and answers bytes.
"""
from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, raw
from sanic_ext import openapi

from api import media_links
from api.auth import STAFF_ROLES, authenticate, require
from api.v1 import present, schemas
from api.v1.docs import BEARER, RawSchema, doc, response_schema_of
from api.v1.http import record_id, respond, routes
from orders.errors import DomainError, InvalidInput
from orders.evidence import UPLOAD_TYPES, UnsupportedMedia

TAG = "照片"
FILE_FIELD = "file"
UPLOAD_FORMATS = "、".join(dict.fromkeys(UPLOAD_TYPES.values()))


class LinkRefused(DomainError):
    code = "media_link_invalid"
    status = 403


@routes.post("/media")
@openapi.body({"multipart/form-data": RawSchema({
    "type": "object", "required": [FILE_FIELD],
    "properties": {FILE_FIELD: {"type": "string", "format": "binary", "description": "照片文件"}}})}, required=True)
@doc("上传照片", tag=TAG, response=schemas.MediaOut, status=201,
     description=f"multipart/form-data,字段 {FILE_FIELD};只收 {UPLOAD_FORMATS} 照片(按文件内容判断),大小上限见配置 "
                 "media.max_upload_bytes(默认 10 MB)。把返回的 id 填进办理进展或办结的 photos。")
@require(*STAFF_ROLES)
async def upload(request: Request):
    if not request.content_type.startswith("multipart/form-data"):
        raise UnsupportedMedia(f"请用 multipart/form-data 上传照片,文件放在 {FILE_FIELD} 字段")
    upload_file = request.files.get(FILE_FIELD) if request.files else None
    if upload_file is None:
        raise InvalidInput(f"没有收到照片:请把文件放在 multipart/form-data 的 {FILE_FIELD} 字段", field=FILE_FIELD)
    media = await request.app.ctx.orders.upload(request.ctx.actor, upload_file.body)
    link = media_links.linker(request.app.ctx.settings, request.app.ctx.clock.now())
    return respond(present.media_out(media, link), status=201)


@routes.get("/media/<media_id:int>")
@openapi.summary("照片或语音的内容")
@openapi.tag(TAG)
@openapi.description("带 Authorization: Bearer(能看这个工单的人,群众看自己的),或用工单详情 photos[].url 里的签名地址"
                     "(expires、sig,短时有效,无需登录)。")
@openapi.parameter("expires", RawSchema({"type": "string", "pattern": "^[0-9]{1,12}$"}), "query", required=False)
@openapi.parameter("sig", RawSchema({"type": "string", "maxLength": 64}), "query", required=False)
@openapi.secured(BEARER)
@openapi.response(200, {"*/*": RawSchema({"type": "string", "format": "binary"})}, "文件内容")
@openapi.response("default", {"application/json": RawSchema(response_schema_of(schemas.ErrorBody))},
                  "错误:{error: {code, message}}")
async def content(request: Request, media_id: int) -> HTTPResponse:
    record_id(media_id, "文件")
    settings, now = request.app.ctx.settings, request.app.ctx.clock.now()
    if "sig" in request.args or "expires" in request.args:
        if not media_links.verify(settings, media_id, request.args.get("expires"), request.args.get("sig"), now):
            raise LinkRefused("照片链接无效或已过期,请重新打开工单")
        actor = None
    else:
        actor = await authenticate(request)
    media, data = await request.app.ctx.orders.media_content(media_id, actor)
    return raw(data, content_type=media.content_type or "application/octet-stream", headers={
        "Cache-Control": "private, max-age=300",
        "ETag": f'"{media.sha256}"',
        "X-Content-Type-Options": "nosniff",
        # bytes from outside (a PicUrl) are never a page of ours: no script, no same-origin rights
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })
