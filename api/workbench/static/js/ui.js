// Shared pieces: time and deadline wording, a ticking clock, form drafts that survive a failed request, and the
// components every view uses (an order card, an error box with what to do, a field's error).
const { reactive, computed } = Vue;

export const clock = reactive({ now: Date.now() });
setInterval(() => { clock.now = Date.now(); }, 30000);

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}月${d.getDate()}日 ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function span(ms) {
  const minutes = Math.max(0, Math.round(Math.abs(ms) / 60000));
  const days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
  if (days) return `${days}天${hours}小时`;
  if (hours) return `${hours}小时${mins}分`;
  return `${mins}分钟`;
}

// The deadline that matters now: accepting for a dispatched order, resolving for one in hand.
export function deadlineOf(order) {
  if (order.state === "dispatched") return { label: "接单", at: order.accept_deadline };
  if (order.state === "accepted" || order.state === "reopened") return { label: "办结", at: order.resolve_deadline };
  return null;
}

export function countdown(order, now) {
  const deadline = deadlineOf(order);
  if (!deadline || !deadline.at) return null;
  const left = new Date(deadline.at).getTime() - now;
  if (left < 0) return { text: `${deadline.label}已超期 ${span(left)}`, cls: "late" };
  if (order.overdue) return { text: `${deadline.label}已超期`, cls: "late" };
  return { text: `${deadline.label}剩 ${span(left)}`, cls: left < 24 * 3600 * 1000 ? "soon" : "" };
}

export function age(order, now) {
  return `已 ${span(now - new Date(order.submitted_at).getTime())}`;
}

// Drafts: what was typed into a form, kept in sessionStorage until the action succeeds.
const DRAFTS = "sidan.workbench.draft:";
export function draft(key, initial) {
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(DRAFTS + key)); } catch { saved = null; }
  const state = reactive({ ...initial, ...(saved || {}) });
  const save = () => sessionStorage.setItem(DRAFTS + key, JSON.stringify(state));
  const clear = () => { sessionStorage.removeItem(DRAFTS + key); Object.assign(state, initial); };
  return { state, save, clear };
}

export const ErrorBox = {
  props: { error: Object, retry: Function },
  template: `<div v-if="error" class="wb-error" role="alert" data-test="error">
      <div>{{ error.advice || error.message }}</div>
      <van-button v-if="retry && (error.status === 0 || error.status >= 500)" size="small" type="danger" plain
                  @click="retry">重试</van-button>
    </div>`,
};

export const FieldError = {
  props: { error: Object, field: String },
  template: `<div v-if="error && error.field === field" class="wb-field-error" :data-field="field">{{ error.message }}</div>`,
};

export const OrderCard = {
  props: { order: Object, showAge: Boolean },
  setup(props) {
    const due = computed(() => countdown(props.order, clock.now));
    const ageText = computed(() => age(props.order, clock.now));
    return { due, ageText };
  },
  template: `<div class="wb-card" :data-number="order.number"><a class="wb-order" :href="'#/orders/' + order.number">
      <div class="top"><span>{{ order.number }}</span>
        <span><van-tag v-if="order.urgency === '急难事'" type="danger">急难事</van-tag>
          <van-tag v-else plain type="primary">{{ order.urgency }}</van-tag>
          <van-tag plain style="margin-left:4px">{{ order.state_label }}</van-tag></span></div>
      <div class="text">{{ order.excerpt }}</div>
      <div class="meta">
        <span v-if="order.category">{{ order.category }}</span>
        <span v-if="order.department">· {{ order.department.name }}</span>
        <span v-if="order.grid">· {{ order.grid.name }}</span>
        <van-tag v-if="order.escalation_level > 0" type="warning">升级督办 {{ order.escalation_level }} 级</van-tag>
        <van-tag v-if="order.extension_days_requested" type="warning">申请延期 {{ order.extension_days_requested }} 天</van-tag>
        <span v-if="showAge" class="wb-age">{{ ageText }}</span>
        <span v-if="due" class="wb-deadline" :class="due.cls">{{ due.text }}</span>
      </div>
      <div v-if="order.returned" class="meta" style="margin-top:6px">退单理由:{{ order.returned.reason }}
        <span v-if="order.returned.suggested_department">(建议:{{ order.returned.suggested_department.name }})</span></div>
      </a><slot></slot></div>`,
};
