// The workbench's shell: sign-in, a hash router (#/, #/orders/<n>, #/me, #/queue, #/qr/<t>, #/bind/<code>;
// /m/survey/<n> by path), each role's home and tab bar, and the progress bar of slow requests.
import { auth, loadProfile, net, signOut } from "./api.js";
import { ErrorBox } from "./ui.js";
import { DepartmentHome, GridHome, ResidentHome, SupervisorHome, openDashboard } from "./lists.js";
import { DispatchQueue } from "./dispatch.js";
import { OrderPage } from "./order.js";
import { SurveyPage } from "./survey.js";
import { AdminHome } from "./admin.js";
import { Bind, QrConfirm, QrLogin, authorise, inWeChat, takeSignedIn } from "./login.js";

const { createApp, reactive, computed, ref } = Vue;

const HOMES = { dept_staff: "DepartmentHome", grid_worker: "GridHome", supervisor: "SupervisorHome",
                admin: "AdminHome", resident: "ResidentHome" };
const TABS = {
  dept_staff: [["#/", "工单", "orders-o"]],
  grid_worker: [["#/", "派单", "guide-o"]],
  supervisor: [["#/", "督单", "warning-o"], ["/dashboard", "总览", "chart-trending-o"]],
  admin: [["#/", "管理", "setting-o"], ["#/queue", "派单", "guide-o"]],
  resident: [["#/", "我的工单", "orders-o"]],
};

function parse() {
  const survey = location.pathname.match(/^\/m\/survey\/([^/]+)$/);
  const hash = location.hash.replace(/^#/, "") || "/";
  let m;
  if ((m = hash.match(/^\/orders\/([^/?]+)/))) return { name: "order", number: decodeURIComponent(m[1]) };
  if ((m = hash.match(/^\/qr\/([^/?]+)/))) return { name: "qr", ticket: m[1] };
  if ((m = hash.match(/^\/bind\/([^/?]+)/))) return { name: "bind", code: decodeURIComponent(m[1]) };
  if (survey) return { name: "survey", number: decodeURIComponent(survey[1]) };
  if (hash.startsWith("/me")) return { name: "me" };
  if (hash.startsWith("/queue")) return { name: "queue" };
  return { name: "home" };
}

const Me = {
  setup() {
    const out = () => { signOut(); location.replace("/m/"); };
    return { auth, out };
  },
  template: `<div><van-nav-bar title="我的" />
      <van-cell-group inset style="margin-top:12px" v-if="auth.profile">
        <van-cell title="姓名" :value="auth.profile.name" />
        <van-cell title="角色" :value="auth.profile.role_label" />
        <van-cell v-if="auth.profile.department" title="部门" :value="auth.profile.department.name" />
        <van-cell v-if="auth.profile.grid" title="网格" :value="auth.profile.grid.name" />
      </van-cell-group>
      <div class="wb-section"><van-button block @click="out">退出登录</van-button></div></div>`,
};

const Shell = {
  components: { DepartmentHome, GridHome, SupervisorHome, AdminHome, ResidentHome, DispatchQueue, OrderPage,
                SurveyPage, QrLogin, QrConfirm, Bind, Me, ErrorBox },
  setup() {
    const route = ref(parse()), state = reactive({ ready: false, error: null });
    window.addEventListener("hashchange", () => { route.value = parse(); window.scrollTo(0, 0); });
    const role = computed(() => auth.profile?.role);
    const home = computed(() => HOMES[role.value] || "ResidentHome");
    const tabs = computed(() => [...(TABS[role.value] || []), ["#/me", "我的", "user-o"]]);
    const activeTab = computed(() => {
      const hash = route.value && (location.hash || "#/");
      const found = tabs.value.findIndex(([href]) => href === hash || (href !== "#/" && hash.startsWith(href)));
      return found < 0 ? 0 : found;
    });
    const urgent = computed(() => auth.profile?.urgent_unattended || []);
    async function start() {
      state.error = null;
      if (!auth.tokens) {
        if (route.value.name === "bind" && sessionStorage.getItem("sidan.workbench.openid_ticket")) { state.ready = true; return; }
        if (inWeChat()) { authorise(location.pathname + location.hash); return; }
        state.ready = true;
        return;
      }
      try { await loadProfile(); } catch (e) { if (auth.tokens) state.error = e; }
      state.ready = true;
      document.body.dataset.role = auth.profile?.role || "";
    }
    function signedIn() { location.hash = "#/"; route.value = parse(); state.ready = false; start(); }
    const go = (href) => { if (href.startsWith("#")) location.hash = href; else openDashboard(); };
    start();
    return { route, state, auth, net, home, tabs, activeTab, urgent, start, signedIn, go };
  },
  template: `<div>
      <div v-if="net.busy" class="wb-progress" aria-hidden="true"></div>
      <div v-if="net.slow" class="wb-slow" role="status">网络较慢,正在加载…</div>
      <div v-if="!state.ready" class="wb-empty"><van-loading>正在登录…</van-loading></div>
      <template v-else-if="!auth.tokens">
        <Bind v-if="route.name === 'bind'" :code="route.code" @signed-in="signedIn" />
        <QrLogin v-else @signed-in="signedIn" />
      </template>
      <ErrorBox v-else-if="state.error" :error="state.error" :retry="start" />
      <template v-else-if="auth.profile">
        <van-notice-bar v-for="u in urgent" :key="u.number" left-icon="warning-o" color="#fff" background="#ee0a24" wrapable
          :text="u.notice" @click="u.can_open && go('#/orders/' + u.number)" />
        <SurveyPage v-if="route.name === 'survey'" :number="route.number" />
        <OrderPage v-else-if="route.name === 'order'" :key="route.number" :number="route.number" />
        <QrConfirm v-else-if="route.name === 'qr'" :ticket="route.ticket" />
        <Bind v-else-if="route.name === 'bind'" :code="route.code" @signed-in="signedIn" />
        <Me v-else-if="route.name === 'me'" />
        <div v-else-if="route.name === 'queue'"><van-nav-bar title="待派单" /><DispatchQueue /></div>
        <component v-else :is="home" />
        <van-tabbar v-if="route.name !== 'survey'" :model-value="activeTab" safe-area-inset-bottom>
          <van-tabbar-item v-for="[href, label, icon] in tabs" :key="href" :icon="icon" @click="go(href)">{{ label }}</van-tabbar-item>
        </van-tabbar>
      </template>
    </div>`,
};

if (!takeSignedIn()) {
  const app = createApp(Shell);
  app.use(vant);
  app.mount("#app");
}
