// Signing in (WORKBENCH-CONTRACT.md): inside WeChat the official account's web authorisation at /m/auth, which
// comes back to #/signed-in?access_token=…; on a PC a QR code that a signed-in phone confirms (#/qr/<ticket>);
// a new staff member binds with an invitation (#/bind/<code>) on the first sign-in.
import { act, anonymous, auth, saveTokens } from "./api.js";
import { ErrorBox } from "./ui.js";
import { qrImage } from "./admin.js";

const { ref, onMounted, onUnmounted } = Vue;
const TICKET = "sidan.workbench.openid_ticket";

export const inWeChat = () => /MicroMessenger/i.test(navigator.userAgent);

export function authorise(next) {
  location.replace(`/m/auth?next=${encodeURIComponent(next)}`);
}

// #/signed-in?access_token=…&refresh_token=…&openid_ticket=…&next=…: keep the tokens, drop them from the address
// bar and the history, and go where the sign-in started. Returns true when the page moves elsewhere.
export function takeSignedIn() {
  const hash = location.hash;
  if (!hash.startsWith("#/signed-in")) return false;
  const params = new URLSearchParams(hash.slice(hash.indexOf("?") + 1));
  if (params.get("access_token")) {
    saveTokens({ access_token: params.get("access_token"), refresh_token: params.get("refresh_token") });
  }
  if (params.get("openid_ticket")) sessionStorage.setItem(TICKET, params.get("openid_ticket"));
  let next = params.get("next") || "/m/";
  if (!next.startsWith("/m/")) next = "/m/";
  const [path, fragment = ""] = next.split("#");
  history.replaceState(null, "", `${path}${fragment ? `#${fragment}` : "#/"}`);
  if (path !== location.pathname) { location.replace(next); return true; }
  return false;
}

export const QrLogin = {
  components: { ErrorBox },
  emits: ["signed-in"],
  setup(props, { emit }) {
    const qr = ref(null), error = ref(null), expired = ref(false);
    let timer = null, ticket = null;
    async function start() {
      clearInterval(timer);
      error.value = null;
      expired.value = false;
      try {
        ticket = await anonymous("POST", "/auth/qr");
        qr.value = qrImage(ticket.confirm_url);
        timer = setInterval(poll, 2000);
      } catch (e) { error.value = e; }
    }
    async function poll() {
      try {
        const state = await anonymous("GET", `/auth/qr/${ticket.ticket}?poll_secret=${encodeURIComponent(ticket.poll_secret)}`);
        if (state.status === "granted" && state.tokens) {
          clearInterval(timer);
          saveTokens(state.tokens);
          emit("signed-in");
        } else if (state.status === "expired") { clearInterval(timer); expired.value = true; }
      } catch (e) { if (e.status !== 0) { clearInterval(timer); error.value = e; } }
    }
    onMounted(start);
    onUnmounted(() => clearInterval(timer));
    return { qr, error, expired, start };
  },
  template: `<div class="wb-qr" data-test="qr-login">
      <h2>四单工作台</h2>
      <p>请用已绑定的微信扫一扫,在手机上确认登录</p>
      <img v-if="qr && !expired" :src="qr" alt="登录二维码">
      <div v-if="expired">二维码已过期 <van-button size="small" type="primary" @click="start">刷新二维码</van-button></div>
      <ErrorBox :error="error" :retry="start" />
      <p class="wb-photo-note">群众请在微信里打开公众号菜单中的链接。</p>
    </div>`,
};

export const QrConfirm = {
  components: { ErrorBox },
  props: { ticket: String },
  setup(props) {
    const done = ref(false), error = ref(null), sending = ref(false);
    async function confirm() {
      sending.value = true;
      try { await act(`/auth/qr/${props.ticket}/confirm`); done.value = true; } catch (e) { error.value = e; }
      finally { sending.value = false; }
    }
    return { done, error, sending, confirm, auth };
  },
  template: `<div class="wb-qr"><van-nav-bar title="电脑登录确认" />
      <template v-if="!done"><p>确认以 <b>{{ auth.profile && auth.profile.name }}</b> 的身份在电脑上登录工作台?</p>
        <van-button type="primary" block :loading="sending" @click="confirm">确认登录</van-button></template>
      <p v-else data-test="qr-confirmed">已确认,请在电脑上继续操作。</p>
      <ErrorBox :error="error" :retry="confirm" /></div>`,
};

export const Bind = {
  components: { ErrorBox },
  props: { code: String },
  emits: ["signed-in"],
  setup(props, { emit }) {
    const error = ref(null), sending = ref(false);
    async function bind() {
      sending.value = true;
      try {
        const tokens = await anonymous("POST", "/auth/bind", { invitation: props.code,
                                                               openid_ticket: sessionStorage.getItem(TICKET) || "" });
        sessionStorage.removeItem(TICKET);
        saveTokens(tokens);
        emit("signed-in");
      } catch (e) { error.value = e; } finally { sending.value = false; }
    }
    return { error, sending, bind };
  },
  template: `<div class="wb-qr"><van-nav-bar title="绑定工作人员账号" />
      <p>用邀请码 <b>{{ code }}</b> 把这个微信绑定为工作人员账号。</p>
      <van-button type="primary" block :loading="sending" @click="bind">确认绑定</van-button>
      <ErrorBox :error="error" :retry="bind" /></div>`,
};
