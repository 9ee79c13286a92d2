// The forms of an order's actions. Each posts what was typed to the API as it is: the API checks it, and its
// message shows next to the field it names; what was typed stays (sessionStorage) until the action succeeds.
import { act, get } from "./api.js";
import { ErrorBox, FieldError, draft } from "./ui.js";
import { PhotoPicker } from "./photos.js";

const { ref, reactive, onMounted } = Vue;

// The codes POST /orders/{n}/invalidate takes (the API's InvalidateBody), with the words staff read.
export const INVALID_CODES = [
  ["out_of_remit", "不属于本镇受理范围"], ["spam", "无效信息"], ["duplicate", "重复反映"],
  ["insufficient_info", "信息不足,无法办理"],
];

let departments = null;
export const departmentNames = reactive({});  // code → name, once /departments answered
export async function departmentOptions() {
  departments = departments || get("/departments").then((page) => {
    for (const d of page.items) departmentNames[d.code] = d.name;
    return page.items.filter((d) => d.active);
  });
  try { return await departments; } catch (e) { departments = null; throw e; }
}
export function departmentName(code) {
  if (!departments) departmentOptions().catch(() => {});
  return departmentNames[code] || code;
}

// name → [title, path, fields, submit label]; a field: [name, label, kind, extra]
export const FORMS = {
  accept: ["接单", "accept", [], "确认接单"],
  progress: ["办理进展", "progress", [["note", "进展情况", "textarea", { placeholder: "如:已到现场查看,明天上午维修" }],
    ["photos", "现场照片", "photos"], ["notify_resident", "告知群众", "switch"]], "提交进展"],
  resolve: ["办结", "resolve", [["result", "办理结果", "textarea", { placeholder: "写明怎么解决的,群众会看到" }],
    ["photos", "办结照片", "photos"]], "确认办结"],
  return: ["退单", "return", [["reason", "退单理由", "textarea", { placeholder: "为什么不归本部门办理" }],
    ["suggested_department", "建议部门", "department", { optional: true }]], "确认退单"],
  request_extension: ["申请延期", "extension", [["days", "延期天数", "number"],
    ["reason", "延期理由", "textarea"]], "提交申请"],
  extend: ["批准延期", "extension/approve", [["days", "批准天数", "number", { placeholder: "不填按申请的天数" }],
    ["reason", "说明", "textarea", { optional: true }]], "批准"],
  deny_extension: ["驳回延期", "extension/deny", [["reason", "驳回理由", "textarea"]], "驳回"],
  dispatch: ["派单", "dispatch", [["department", "承办部门", "department"],
    ["reason", "派单说明", "textarea", { optional: true }]], "确认派单"],
  invalidate: ["不予受理", "invalidate", [["code", "原因", "reason_code"],
    ["reason", "告诉群众的话", "textarea", { placeholder: "为什么不予受理,可以怎么办(如该向哪里反映)" }]], "确认不予受理"],
  merge: ["合并到其他工单", "merge", [["into", "合并到的工单编号", "text", { placeholder: "如 YK20261124-0001" }],
    ["reason", "合并说明", "textarea", { optional: true, placeholder: "会告诉群众;不填则说明与哪张工单反映同一事项" }]], "确认合并"],
  cancel: ["取消工单", "cancel", [["reason", "取消原因", "textarea", { optional: true }]], "确认取消"],
};

function body(fields, state) {
  const out = {};
  for (const [name, , kind] of fields) {
    const value = state[name];
    if (kind === "photos") out[name] = value.map((p) => p.id);
    else if (kind === "switch") { if (value) out[name] = true; }   // sent only when asked
    else if (kind === "number") { if (value !== "" && value !== null) out[name] = Number(value); }
    else if (value !== "" && value !== null && value !== undefined) out[name] = value;
  }
  return out;
}

function initial(fields) {
  const state = {};
  for (const [name, , kind] of fields) state[name] = kind === "photos" ? [] : kind === "switch" ? false : "";
  return state;
}

export const ActionForm = {
  components: { ErrorBox, FieldError, PhotoPicker },
  props: { number: String, action: String, preset: Object },
  emits: ["done", "conflict", "cancel"],
  setup(props, { emit }) {
    const [title, path, fields, submitLabel] = FORMS[props.action];
    const { state, save, clear } = draft(`${props.number}:${props.action}`, initial(fields));
    if (props.preset) Object.assign(state, props.preset);  // a suggestion tapped wins over an older draft
    const error = ref(null), sending = ref(false), options = ref([]);
    onMounted(async () => {
      if (fields.some((f) => f[2] === "department")) {
        try { options.value = await departmentOptions(); } catch (e) { error.value = e; }
      }
    });
    async function submit() {
      save();
      sending.value = true;
      error.value = null;
      try {
        const detail = await act(`/orders/${props.number}/${path}`, body(fields, state));
        clear();
        emit("done", detail, title);
      } catch (e) {
        error.value = e;
        if (e.status === 409) emit("conflict");
      } finally { sending.value = false; }
    }
    return { title, fields, submitLabel, state, save, error, sending, options, submit, INVALID_CODES };
  },
  template: `<form class="wb-form" :data-form="action" @submit.prevent="submit" @input="save" @change="save">
      <van-nav-bar :title="title" />
      <template v-for="[name, label, kind, extra] in fields" :key="name">
        <van-field v-if="kind === 'textarea' || kind === 'text' || kind === 'number'" v-model="state[name]"
          :name="name" :label="label" :type="kind === 'number' ? 'digit' : kind" :rows="kind === 'textarea' ? 3 : undefined"
          :autosize="kind === 'textarea'" :placeholder="(extra && extra.placeholder) || (extra && extra.optional ? '选填' : '请填写')"
          :error="!!error && error.field === name" label-align="top" />
        <van-cell v-else-if="kind === 'switch'" :title="label" center>
          <template #right-icon><van-switch v-model="state[name]" :name="name" /></template></van-cell>
        <div v-else-if="kind === 'photos'"><van-cell :title="label" :border="false" />
          <PhotoPicker v-model="state[name]" @update:model-value="save" /></div>
        <van-cell-group v-else-if="kind === 'department'" :title="label + (extra && extra.optional ? '(选填)' : '')">
          <van-radio-group v-model="state[name]" :name="name">
            <van-cell v-for="d in options" :key="d.code" :title="d.name" clickable @click="state[name] = d.code; save()">
              <template #right-icon><van-radio :name="d.code" /></template></van-cell>
          </van-radio-group></van-cell-group>
        <van-cell-group v-else-if="kind === 'reason_code'" :title="label">
          <van-radio-group v-model="state[name]" :name="name">
            <van-cell v-for="[code, words] in INVALID_CODES" :key="code" :title="words" clickable @click="state[name] = code; save()">
              <template #right-icon><van-radio :name="code" /></template></van-cell>
          </van-radio-group></van-cell-group>
        <FieldError :error="error" :field="name" />
      </template>
      <ErrorBox :error="error && !fields.some(f => f[0] === error.field) ? error : null" :retry="submit" />
      <div class="buttons">
        <van-button native-type="button" @click="$emit('cancel')">返回</van-button>
        <van-button type="primary" native-type="submit" :loading="sending" loading-text="提交中…">{{ submitLabel }}</van-button>
      </div>
    </form>`,
};
