// Admin (管理): staff accounts (stop / restart), invitations with a QR code to scan in WeChat, and departments and
// grids (places.js).
import { act, call, get } from "./api.js";
import { ErrorBox, FieldError, draft, when } from "./ui.js";
import { departmentOptions } from "./actions.js";
import { Places } from "./places.js";

const { ref, onMounted } = Vue;

const ROLES = [["dept_staff", "部门工作人员"], ["grid_worker", "网格员"], ["supervisor", "督办员"], ["admin", "管理员"]];

// Scanning the code in WeChat signs in through the official account and binds with the invitation (#/bind/…).
export function invitationLink(code) {
  return `${location.origin}/m/auth?next=${encodeURIComponent(`/m/#/bind/${code}`)}`;
}

export function qrImage(text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  return qr.createDataURL(6, 12);
}

const Invite = {
  components: { ErrorBox, FieldError },
  emits: ["issued"],
  setup(props, { emit }) {
    const { state, save, clear } = draft("invite", { name: "", role: "dept_staff", department: "", grid: "" });
    const error = ref(null), sending = ref(false), departments = ref([]), grids = ref([]), issued = ref(null);
    onMounted(async () => {
      try {
        departments.value = await departmentOptions();
        grids.value = (await get("/grids")).features.map((f) => f.properties);
      } catch (e) { error.value = e; }
    });
    async function submit() {
      save();
      sending.value = true;
      error.value = null;
      const body = { name: state.name, role: state.role };
      if (state.role === "dept_staff" && state.department) body.department = state.department;
      if (state.role === "grid_worker" && state.grid) body.grid = state.grid;
      try {
        const invitation = await act("/admin/invitations", body);
        issued.value = { ...invitation, link: invitationLink(invitation.code), qr: qrImage(invitationLink(invitation.code)) };
        clear();
        emit("issued");
      } catch (e) { error.value = e; } finally { sending.value = false; }
    }
    return { state, save, error, sending, departments, grids, issued, submit, ROLES, when };
  },
  template: `<div>
      <form class="wb-card wb-form" data-form="invite" @submit.prevent="submit" @input="save" @change="save">
        <h3>邀请新工作人员</h3>
        <van-field v-model="state.name" name="name" label="姓名" placeholder="请填写" :error="!!error && error.field === 'name'" />
        <FieldError :error="error" field="name" />
        <van-field label="角色"><template #input><select v-model="state.role" name="role" class="wb-select">
          <option v-for="[code, label] in ROLES" :key="code" :value="code">{{ label }}</option></select></template></van-field>
        <van-field v-if="state.role === 'dept_staff'" label="部门"><template #input><select v-model="state.department" name="department" class="wb-select">
          <option value="">请选择</option><option v-for="d in departments" :key="d.code" :value="d.code">{{ d.name }}</option></select></template></van-field>
        <FieldError :error="error" field="department" />
        <van-field v-if="state.role === 'grid_worker'" label="网格"><template #input><select v-model="state.grid" name="grid" class="wb-select">
          <option value="">请选择</option><option v-for="g in grids" :key="g.code" :value="g.code">{{ g.name }}({{ g.village }})</option></select></template></van-field>
        <FieldError :error="error" field="grid" />
        <ErrorBox :error="error && !['name', 'department', 'grid'].includes(error.field) ? error : null" :retry="submit" />
        <div class="buttons"><van-button type="primary" block native-type="submit" :loading="sending" loading-text="生成中…">生成邀请二维码</van-button></div>
      </form>
      <div v-if="issued" class="wb-card wb-qr" data-test="invitation">
        <h3>请 {{ issued.staff.name }} 用微信扫码绑定</h3>
        <img :src="issued.qr" alt="邀请二维码" data-test="invitation-qr">
        <div>邀请码 <b data-test="invitation-code">{{ issued.code }}</b>,{{ when(issued.expires_at) }} 前有效,只能用一次</div>
      </div>
    </div>`,
};

const StaffList = {
  components: { ErrorBox },
  setup() {
    const items = ref([]), error = ref(null), invitations = ref([]);
    async function load() {
      try {
        items.value = (await get("/admin/staff")).items;
        invitations.value = (await get("/admin/invitations")).items.filter((i) => !i.used_at).slice(0, 10);
        error.value = null;
      } catch (e) { error.value = e; }
    }
    async function toggle(person, active) {
      try {
        const updated = await call("PATCH", `/admin/staff/${person.id}`, { active });
        Object.assign(person, updated);
        vant.showToast(active ? "已启用" : "已停用");
      } catch (e) { error.value = e; }
    }
    onMounted(load);
    return { items, error, invitations, load, toggle, when };
  },
  template: `<div>
      <ErrorBox :error="error" :retry="load" />
      <van-cell-group title="工作人员" inset>
        <van-cell v-for="p in items" :key="p.id" :title="p.name" :data-staff="p.name"
          :label="p.role_label + (p.department ? ' · ' + p.department.name : '') + (p.grid ? ' · ' + p.grid.name : '') + (p.bound ? ' · 已绑定微信' : ' · 未绑定微信')">
          <template #right-icon><van-switch :model-value="p.active" size="22" @update:model-value="v => toggle(p, v)" /></template>
        </van-cell>
      </van-cell-group>
      <van-cell-group v-if="invitations.length" title="未使用的邀请码" inset>
        <van-cell v-for="i in invitations" :key="i.code" :title="i.staff.name + ' · ' + i.code" :label="when(i.expires_at) + ' 前有效'" />
      </van-cell-group>
    </div>`,
};

export const AdminHome = {
  components: { Invite, StaffList, Places },
  setup() { return { active: ref(0), round: ref(0) }; },
  template: `<div><van-nav-bar title="管理" />
      <van-tabs v-model:active="active" sticky>
        <van-tab title="人员"><StaffList :key="round" /></van-tab>
        <van-tab title="邀请"><Invite @issued="round++" /></van-tab>
        <van-tab title="部门与网格"><Places /></van-tab>
      </van-tabs></div>`,
};
