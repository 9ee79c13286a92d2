// Lists of orders: one component that reads a page of the API, shows more on demand, and refreshes when the page
// comes back to the foreground and every minute; and the tabbed lists of each staff role.
import { auth, get } from "./api.js";
import { ErrorBox, OrderCard } from "./ui.js";
import { DispatchQueue } from "./dispatch.js";

const { ref, onMounted, onUnmounted, watch } = Vue;
export const REFRESH_MS = 60000;

const OPEN = "submitted,dispatched,accepted,returned,reopened";

// Refresh `load` when the page is shown again and every minute while it is open.
export function keepFresh(load) {
  const onVisible = () => { if (document.visibilityState === "visible") load(); };
  let timer = null;
  onMounted(() => {
    document.addEventListener("visibilitychange", onVisible);
    timer = setInterval(() => { if (document.visibilityState === "visible") load(); }, REFRESH_MS);
  });
  onUnmounted(() => { document.removeEventListener("visibilitychange", onVisible); clearInterval(timer); });
}

export const OrderList = {
  components: { OrderCard, ErrorBox },
  props: { path: { type: String, default: "/orders" }, params: Object, urgentFirst: Boolean, showAge: Boolean,
           empty: { type: String, default: "暂无工单" } },
  setup(props) {
    const items = ref([]), next = ref(null), error = ref(null), loading = ref(false), loaded = ref(false);
    const sorted = (list) => props.urgentFirst
      ? [...list].sort((a, b) => (b.urgency === "急难事") - (a.urgency === "急难事")) : list;
    async function load() {
      loading.value = true;
      try {
        const page = await get(props.path, { ...(props.params || {}), limit: 50 });
        items.value = sorted(page.items);
        next.value = page.next_cursor;
        error.value = null;
      } catch (e) { error.value = e; } finally { loading.value = false; loaded.value = true; }
    }
    async function more() {
      loading.value = true;
      try {
        const page = await get(props.path, { ...(props.params || {}), limit: 50, cursor: next.value });
        items.value = sorted([...items.value, ...page.items]);
        next.value = page.next_cursor;
      } catch (e) { error.value = e; } finally { loading.value = false; }
    }
    onMounted(load);
    keepFresh(load);
    watch(() => JSON.stringify(props.params), load);
    return { items, next, error, loading, loaded, load, more };
  },
  template: `<div class="wb-list-wrap" :data-list="path">
      <ErrorBox :error="error" :retry="load" />
      <div class="wb-list"><template v-for="order in items" :key="order.number">
        <slot name="item" :order="order" :reload="load"><OrderCard :order="order" :show-age="showAge" /></slot>
      </template></div>
      <div v-if="loaded && !items.length && !error" class="wb-empty">{{ empty }}</div>
      <div v-if="!loaded" class="wb-empty"><van-loading size="24">加载中…</van-loading></div>
      <div v-if="next" class="wb-section"><van-button block :loading="loading" @click="more">加载更多</van-button></div>
    </div>`,
};

const Tabs = {
  components: { OrderList, DispatchQueue },
  props: { tabs: Array, title: String },
  setup() { return { active: ref(0) }; },
  template: `<div><van-nav-bar :title="title" />
      <van-tabs v-model:active="active" sticky>
        <van-tab v-for="tab in tabs" :key="tab.title" :title="tab.title" :name="tab.title">
          <DispatchQueue v-if="tab.queue" />
          <OrderList v-else :params="tab.params" :urgent-first="tab.urgentFirst" :show-age="tab.showAge" :empty="tab.empty" />
        </van-tab>
      </van-tabs></div>`,
};

export const DepartmentHome = {
  components: { Tabs },
  setup() {
    return { tabs: [
      { title: "待接单", params: { state: "dispatched" }, empty: "没有待接的工单" },
      { title: "在办", params: { state: "accepted,reopened" }, empty: "没有在办的工单" },
      { title: "即将超期", params: { state: "dispatched,accepted,reopened", due_soon: true, overdue: false },
        empty: "没有即将超期的工单" },
      { title: "已超期", params: { state: OPEN, overdue: true }, empty: "没有超期的工单" },
      { title: "急难事", params: { state: "dispatched,accepted,reopened", urgent: true }, empty: "没有在办的急难事" },
    ] };
  },
  template: `<Tabs title="接单办单" :tabs="tabs" />`,
};

export const GridHome = {
  components: { Tabs },
  setup() {
    return { tabs: [
      { title: "待派单", queue: true },
      { title: "网格工单", params: { state: OPEN }, showAge: true, empty: "本网格没有在办的工单" },
    ] };
  },
  template: `<Tabs title="派单" :tabs="tabs" />`,
};

// 一屏总览 in a new tab, signed in with this login (the token rides in the fragment, never sent to a server).
export function openDashboard() {
  window.open(`/dashboard#token=${encodeURIComponent(auth.tokens?.access_token || "")}`, "_blank", "noopener");
}

export const SupervisorHome = {
  components: { Tabs },
  setup() {
    return { openDashboard, tabs: [
      { title: "已超期", params: { state: OPEN, overdue: true }, urgentFirst: true, showAge: true, empty: "没有超期的工单" },
      { title: "延期申请", params: { extension_pending: true }, urgentFirst: true, showAge: true, empty: "没有待审批的延期申请" },
      { title: "急难事", params: { state: OPEN, urgent: true }, urgentFirst: true, showAge: true, empty: "没有在办的急难事" },
      { title: "待派单", queue: true },
    ] };
  },
  template: `<div><Tabs title="督单" :tabs="tabs" />
      <div class="wb-section"><van-button block plain type="primary" data-test="dashboard" @click="openDashboard">打开一屏总览</van-button></div></div>`,
};

export const ResidentHome = {
  components: { OrderList },
  template: `<div><van-nav-bar title="我的工单" />
      <OrderList path="/my/orders" empty="您还没有反映过问题。在公众号里发送文字、照片或位置即可反映。" /></div>`,
};
