"""A local fake of the WeChat HTTP API: a real HTTP server on loopback, in a thread.

It records what it receives and can be told to fail, to time out, to answer expired-token errors, or to go
down for a while (the socket closes) and come back on the same port. It holds temporary media (cgi-bin/media/get)
and serves photos by their PicUrl, and can forget either, as WeChat does after about three days; it serves the account's template lists
(`templates`, `subscribe_templates`: set them) and can refuse to give a token (`refuse_token`). cgi-bin/user/info
answers the unionid of an official-account openid from `unionids` (set it; an openid not in it has none), and
jscode2session the unionid of a mini-program openid from the same map.

The official account's web authorisation too: its authorize page (/connect/oauth2/authorize) sends the browser back
to redirect_uri with code=web-<web_openid> (set `web_openid`: who "opened" the page), and /sns/oauth2/access_token
turns such a code into that openid. Tests point wechat.oauth_base and wechat.api_base at base_url.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from tests.support import free_port


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    at: float = field(default_factory=time.time)


class FakeWeChat:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.token_issued = 0
        self.current_token: str | None = None
        self.codes: dict[str, str] = {}  # js_code -> openid; by default "code-<openid>" logs in as <openid>
        self.media: dict[str, tuple[bytes, str]] = {}  # media_id -> (bytes, content type)
        self.pictures: dict[str, tuple[bytes, str]] = {}  # PicUrl path -> (bytes, content type)
        self.templates: list[dict[str, Any]] = []  # get_all_private_template's template_list
        self.subscribe_templates: list[dict[str, Any]] = []  # the mini-program's newtmpl/gettemplate data
        self.token_refusal: dict[str, Any] | None = None  # what /cgi-bin/token answers instead of a token
        self.unionids: dict[str, str] = {}  # openid (either door's) -> unionid: user/info and jscode2session
        self.web_openid = "oWebUser0001"  # who the authorize page says opened it (the official account's openid)
        self._fail_next = 0
        self._fail_status = 500
        self._expire_next = 0
        self._delay_next = 0
        self._delay_seconds = 0.0
        self._refusal: dict[str, Any] | None = None  # the answer to every token request, while refusing
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ control
    def start(self) -> FakeWeChat:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: connections are refused until start() again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail_next, self._fail_status = count, status

    def expire_token_next(self, count: int = 1) -> None:
        with self._lock:
            self._expire_next = count

    def refuse_credentials(self, errcode: int = 40125, errmsg: str = "invalid appsecret") -> None:
        """Answer every access-token request with this error, as WeChat does for a wrong AppSecret."""
        with self._lock:
            self._refusal = {"errcode": errcode, "errmsg": errmsg}

    def delay_next(self, count: int, seconds: float) -> None:
        with self._lock:
            self._delay_next, self._delay_seconds = count, seconds

    def add_media(self, media_id: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """WeChat now holds this medium; returns the PicUrl a photo message would carry."""
        path = f"/mmbiz/{media_id}.jpg"
        with self._lock:
            self.media[media_id] = (data, content_type)
            if content_type.startswith("image/"):
                self.pictures[path] = (data, content_type)
        return self.base_url + path

    def forget(self, media_id: str, picture: bool = False) -> None:
        """media/get answers 40007 for it from now on (and its PicUrl 404 too, when `picture`)."""
        with self._lock:
            self.media.pop(media_id, None)
            if picture:
                self.pictures.pop(f"/mmbiz/{media_id}.jpg", None)

    def media_requests(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == "/cgi-bin/media/get" or r.path.startswith("/mmbiz/")]

    def user_info_requests(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == "/cgi-bin/user/info"]

    def refuse_token(self, errcode: int, errmsg: str) -> None:
        with self._lock:
            self.token_refusal = {"errcode": errcode, "errmsg": errmsg}

    @staticmethod
    def template(template_id: str, title: str, *fields: str, key: str = "template_id") -> dict[str, Any]:
        """A template as WeChat lists it: its content names each field as {{field.DATA}} after a label."""
        content = "\n".join(f"项目{index}:{{{{{name}.DATA}}}}" for index, name in enumerate(fields, 1))
        return {key: template_id, "title": title, "content": content, "example": ""}

    def messages(self, path_suffix: str = "/send") -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.endswith(path_suffix) and r.method == "POST"]

    def messages_to(self, openid: str) -> list[Received]:
        return [r for r in self.messages() if (r.body or {}).get("touser") == openid]

    # ------------------------------------------------------------ behaviour
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = None
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            raw = handler.rfile.read(length) if length else b""
            try:
                body = json.loads(raw.decode("utf-8")) if raw else None
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
        with self._lock:
            delay = self._delay_seconds if self._delay_next > 0 else 0.0
            self._delay_next = max(0, self._delay_next - 1)
            failing = self._fail_next > 0
            self._fail_next = max(0, self._fail_next - 1)
        if delay:
            time.sleep(delay)
        if failing:
            self._reply(handler, {"errcode": -1, "errmsg": "system error"}, status=self._fail_status)
            return
        if url.path == "/connect/oauth2/authorize":  # the page WeChat shows (snsapi_base: none), then back
            with self._lock:
                self.received.append(Received(method, url.path, query, body))
                code = f"web-{self.web_openid}"
            separator = "&" if "?" in query.get("redirect_uri", "") else "?"
            target = f"{query.get('redirect_uri', '')}{separator}{urlencode({'code': code, 'state': query.get('state', '')})}"
            handler.send_response(302)
            handler.send_header("Location", target)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if url.path.startswith("/mmbiz/"):  # WeChat's image server: no token
            with self._lock:
                self.received.append(Received(method, url.path, query, body))
                picture = self.pictures.get(url.path)
            if picture is None:
                self._reply(handler, {"error": "not found"}, status=404)
            else:
                self._reply_bytes(handler, *picture)
            return
        answer = self._answer(url.path, query, body, method)
        if isinstance(answer, tuple):
            self._reply_bytes(handler, *answer)
        else:  # media/get labels its JSON errors text/plain, as WeChat does
            self._reply(handler, answer, content_type="text/plain" if url.path == "/cgi-bin/media/get" else None)

    def _answer(self, path: str, query: dict[str, str], body: dict | None,
                method: str) -> dict[str, Any] | tuple[bytes, str]:
        with self._lock:
            if path == "/cgi-bin/token" and self._refusal is not None:
                self.received.append(Received(method, path, query, body))
                return dict(self._refusal)
            if path == "/cgi-bin/token":
                if self.token_refusal:
                    return self.token_refusal
                self.token_issued += 1
                self.current_token = f"TOKEN-{self.token_issued}"
                self.received.append(Received(method, path, query, body))
                return {"access_token": self.current_token, "expires_in": 7200}
            if path == "/sns/jscode2session":
                self.received.append(Received(method, path, query, body))
                code = query.get("js_code", "")
                openid = self.codes.get(code) or (code[len("code-"):] if code.startswith("code-") else None)
                if not openid:
                    return {"errcode": 40029, "errmsg": "invalid code"}
                session = {"openid": openid, "session_key": "fake-session-key"}
                if openid in self.unionids:
                    session["unionid"] = self.unionids[openid]
                return session
            if path == "/sns/oauth2/access_token":  # web authorisation: code → the official account's openid
                self.received.append(Received(method, path, query, body))
                code = query.get("code", "")
                if not code.startswith("web-") or len(code) <= len("web-"):
                    return {"errcode": 40029, "errmsg": "invalid code"}
                return {"access_token": f"WEB-{code}", "openid": code[len("web-"):], "scope": "snsapi_base",
                        "expires_in": 7200, "refresh_token": "fake-refresh"}
            if self._expire_next > 0:
                self._expire_next -= 1
                return {"errcode": 42001, "errmsg": "access_token expired"}
            if query.get("access_token") != self.current_token:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            self.received.append(Received(method, path, query, body))
            if path == "/cgi-bin/media/get":
                return self.media.get(query.get("media_id", "")) or {"errcode": 40007, "errmsg": "invalid media_id"}
            if path == "/cgi-bin/user/info":
                openid = query.get("openid", "")
                info: dict[str, Any] = {"subscribe": 1, "openid": openid, "language": "zh_CN"}
                if openid in self.unionids:
                    info["unionid"] = self.unionids[openid]
                return info
            if path == "/cgi-bin/template/get_all_private_template":
                return {"template_list": list(self.templates)}
            if path == "/wxaapi/newtmpl/gettemplate":
                return {"errcode": 0, "errmsg": "ok", "data": list(self.subscribe_templates)}
            return {"errcode": 0, "errmsg": "ok", "msgid": len(self.received)}

    @classmethod
    def _reply(cls, handler: BaseHTTPRequestHandler, data: dict[str, Any], status: int = 200,
               content_type: str | None = None) -> None:
        raw = json.dumps(data, ensure_ascii=False).encode("utf-8")
        cls._reply_bytes(handler, raw, f"{content_type or 'application/json'}; charset=utf-8", status)

    @staticmethod
    def _reply_bytes(handler: BaseHTTPRequestHandler, raw: bytes, content_type: str, status: int = 200) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)
