"""`sidan chat`: talk to a running server as a WeChat resident, without a WeChat account.

Messages are built and signed exactly as WeChat's servers do it (SHA-1 over the sorted token, timestamp and
nonce; in compatible and safe modes AES-CBC with the EncodingAESKey and a msg_signature over the ciphertext),
so the server cannot tell the simulator from WeChat.

    sidan chat [--url http://127.0.0.1:8000] [--openid o_demo_resident] [--mode plain|compatible|safe]

Type a sentence to send it as text; commands: /loc LAT LNG [LABEL], /img [MEDIA_ID], /voice [TEXT],
/menu REPORT|MY_ORDERS|RATE, /subscribe, /unsubscribe, /help, /quit.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx
import xmltodict
from wechatpy.crypto import PrpCrypto
from wechatpy.utils import to_text

ACCOUNT = "gh_sidan_simulator"  # the official account's original id, as WeChat puts it in ToUserName
# Where a simulated photo's PicUrl points: a loopback address that serves nothing. The simulator has no picture to
# give, and a server that fetches PicUrls must never be sent to the internet (WeChat's image host) by a test.
SIMULATED_PICTURES = "http://127.0.0.1:9/sidan-chat"
MODES = ("plain", "compatible", "safe")
COMMANDS_HELP = (
    "直接输入文字发送给公众号。命令:\n"
    "  /loc 纬度 经度 [地点]   发送位置,如 /loc 28.640 104.405 楼坝村\n"
    "  /img [media_id]        发送一张照片\n"
    "  /voice [识别文字]       发送语音(不带文字表示无法识别)\n"
    "  /menu KEY              点击菜单:REPORT(我要反映) MY_ORDERS(我的工单) RATE(评价)\n"
    "  /subscribe /unsubscribe  关注 / 取消关注\n"
    "  /help                  显示本说明\n"
    "  /quit                  退出"
)


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted as strings and concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def to_xml(fields: dict[str, Any]) -> str:
    """A message document as WeChat writes it: strings in CDATA, numbers bare."""
    parts = []
    for name, value in fields.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{str(value).replace(']]>', ']]]]><![CDATA[>')}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


class Refused(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


@dataclass
class Simulator:
    """One resident talking to the server's /wechat endpoint."""

    url: str
    token: str
    openid: str
    mode: str = "plain"
    aes_key: str = ""
    appid: str = ""
    account: str = ACCOUNT
    now: Callable[[], float] = time.time
    http: httpx.Client | None = None
    # MsgIds are unique per account; a random start keeps two simulators (or two runs) from colliding.
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(secrets.randbits(52)))

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if self.mode != "plain" and len(self.aes_key) != 43:
            raise ValueError("compatible and safe modes need the 43-character EncodingAESKey (SIDAN_WECHAT_AES_KEY)")
        self.url = self.url.rstrip("/")
        self._own_http = False

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    # ---------------------------------------------------------------- message kinds (the fields WeChat sends)
    def _base(self, msg_type: str) -> dict[str, Any]:
        return {"ToUserName": self.account, "FromUserName": self.openid, "CreateTime": int(self.now()),
                "MsgType": msg_type}

    def text_message(self, content: str) -> dict[str, Any]:
        return {**self._base("text"), "Content": content, "MsgId": next(self._ids)}

    def voice_message(self, recognition: str | None) -> dict[str, Any]:
        fields = {**self._base("voice"), "MediaId": f"voice-{secrets.token_hex(6)}", "Format": "amr",
                  "MsgId": next(self._ids)}
        if recognition:
            fields["Recognition"] = recognition
        return fields

    def image_message(self, media_id: str | None = None) -> dict[str, Any]:
        media_id = media_id or f"media-{secrets.token_hex(6)}"
        return {**self._base("image"), "PicUrl": f"{SIMULATED_PICTURES}/{media_id}.jpg", "MediaId": media_id,
                "MsgId": next(self._ids)}

    def location_message(self, latitude: float, longitude: float, label: str = "") -> dict[str, Any]:
        return {**self._base("location"), "Location_X": latitude, "Location_Y": longitude, "Scale": 15,
                "Label": label, "MsgId": next(self._ids)}

    def event_message(self, event: str, key: str | None = None) -> dict[str, Any]:
        fields = {**self._base("event"), "Event": event}
        if key is not None:
            fields["EventKey"] = key
        return fields

    def text(self, content: str) -> str | None:
        return self.send(self.text_message(content))

    def voice(self, recognition: str | None) -> str | None:
        return self.send(self.voice_message(recognition))

    def image(self, media_id: str | None = None) -> str | None:
        return self.send(self.image_message(media_id))

    def location(self, latitude: float, longitude: float, label: str = "") -> str | None:
        return self.send(self.location_message(latitude, longitude, label))

    def event(self, event: str, key: str | None = None) -> str | None:
        return self.send(self.event_message(event, key))

    def click(self, key: str) -> str | None:
        return self.event("CLICK", key)

    # ---------------------------------------------------------------- the wire
    def envelope(self, fields: dict[str, Any]) -> tuple[dict[str, str], str]:
        """Query parameters and body of one POST, signed (and encrypted) as WeChat does."""
        timestamp, nonce = str(int(self.now())), str(secrets.randbelow(10**10))
        params = {"signature": sign(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                  "openid": self.openid}
        plain = to_xml(fields)
        if self.mode == "plain":
            return params, plain
        encrypt = to_text(PrpCrypto(_aes_key_bytes(self.aes_key)).encrypt(plain, self.appid))
        params.update(encrypt_type="aes", msg_signature=sign(self.token, timestamp, nonce, encrypt))
        if self.mode == "safe":
            return params, to_xml({"ToUserName": self.account, "Encrypt": encrypt})
        return params, to_xml({**fields, "Encrypt": encrypt})  # compatible: plaintext and ciphertext together

    def send(self, fields: dict[str, Any]) -> str | None:
        """POST one message; the bot's text answer, or None when it answers `success`."""
        params, body = self.envelope(fields)
        return self.post(params, body)

    def post(self, params: dict[str, str], body: str | bytes) -> str | None:
        if self.http is None:
            self.http, self._own_http = httpx.Client(timeout=10), True
        response = self.http.post(f"{self.url}/wechat", params=params, content=body,
                                  headers={"Content-Type": "text/xml"})
        return self._answer(response)

    async def send_async(self, fields: dict[str, Any], client: httpx.AsyncClient) -> str | None:
        """The same, on an async client (scripted conversations inside an event loop: tests, benches)."""
        params, body = self.envelope(fields)
        response = await client.post(f"{self.url}/wechat", params=params, content=body,
                                     headers={"Content-Type": "text/xml"})
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> str | None:
        if response.status_code != 200:
            raise Refused(response.status_code, response.text)
        return self.read_reply(response.text)

    def read_reply(self, body: str) -> str | None:
        if body.strip() in ("", "success"):
            return None
        reply = xmltodict.parse(body)["xml"]
        if "Encrypt" in reply:
            if sign(self.token, reply["TimeStamp"], reply["Nonce"], reply["Encrypt"]) != reply["MsgSignature"]:
                raise Refused(200, "the reply's msg_signature does not verify")
            reply = xmltodict.parse(PrpCrypto(_aes_key_bytes(self.aes_key)).decrypt(reply["Encrypt"], self.appid))["xml"]
        if reply.get("ToUserName") != self.openid:
            raise Refused(200, "the reply is addressed to someone else")
        return reply.get("Content")


def _aes_key_bytes(aes_key: str) -> bytes:
    return base64.b64decode(aes_key + "=")


def run(simulator: Simulator, lines: Iterable[str], out: TextIO) -> int:
    """The conversation loop: one line in, the bot's answer out. Returns the number of refused requests."""
    refused = 0

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say(f"已连接 {simulator.url}/wechat,您是居民 {simulator.openid}({simulator.mode} 模式)。/help 查看命令。")
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit", "/q"):
            break
        if line == "/help":
            say(COMMANDS_HELP)
            continue
        try:
            reply = _dispatch(simulator, line)
        except _Usage as usage:
            say(str(usage))
            continue
        except Refused as exc:
            refused += 1
            say(f"[服务器拒绝] {exc}")
            continue
        except httpx.HTTPError as exc:
            refused += 1
            say(f"[无法连接 {simulator.url}] {type(exc).__name__}: {exc}")
            continue
        say(f"公众号:{reply}" if reply else "公众号:(没有回复)")
    say("再见!")
    return refused


def _prompted(stdin: TextIO, out: TextIO) -> Iterable[str]:
    while True:
        out.write("您:")
        out.flush()
        line = stdin.readline()
        if not line:
            return
        yield line


class _Usage(Exception):
    pass


def _dispatch(simulator: Simulator, line: str) -> str | None:
    if not line.startswith("/"):
        return simulator.text(line)
    command, *args = line.split()
    match command:
        case "/loc":
            try:
                latitude, longitude = float(args[0]), float(args[1])
            except (IndexError, ValueError):
                raise _Usage("用法:/loc 纬度 经度 [地点],如 /loc 28.640 104.405 楼坝村") from None
            return simulator.location(latitude, longitude, " ".join(args[2:]))
        case "/img":
            return simulator.image(args[0] if args else None)
        case "/voice":
            return simulator.voice(" ".join(args) or None)
        case "/menu":
            if not args:
                raise _Usage("用法:/menu REPORT|MY_ORDERS|RATE")
            return simulator.click(args[0].upper())
        case "/subscribe":
            return simulator.event("subscribe")
        case "/unsubscribe":
            return simulator.event("unsubscribe")
    raise _Usage(f"不认识的命令 {command}。/help 查看命令。")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sidan chat", description="在终端里扮演居民,与公众号对话(签名方式与微信一致)")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    parser.add_argument("--openid", default="o_chat_resident", help="who you are (a resident's openid)")
    parser.add_argument("--mode", choices=MODES,
                        help="message encryption; default: the server's, wechat.encoding_mode (safe when an AES key "
                             "is set, plain otherwise)")
    parser.add_argument("--token", help="the WeChat token (default: wechat.token from the configuration)")
    return parser


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    from orders.config import ConfigError, load_settings

    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"配置错误 / configuration error: {exc}", file=sys.stderr)
        return 2
    wechat = settings.wechat
    mode = args.mode or wechat.encoding
    try:
        simulator = Simulator(args.url, args.token or wechat.token, args.openid, mode=mode, aes_key=wechat.aes_key,
                              appid=wechat.appid)
    except ValueError as exc:
        print(f"sidan chat: {exc}", file=sys.stderr)
        return 2
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    try:
        run(simulator, _prompted(stdin, stdout) if stdin.isatty() else stdin, stdout)
    finally:
        simulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
