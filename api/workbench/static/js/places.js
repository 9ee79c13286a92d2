// 部门与网格 for admins: the day-to-day edits (PATCH /admin/departments/<code>, POST and PATCH /admin/grids); the
// township file stays the bulk path. The API checks every value; its message shows next to the field.
import { call, get } from "./api.js";
import { ErrorBox, FieldError } from "./ui.js";

const { ref, reactive, onMounted } = Vue;

const DEPARTMENT_FIELDS = [["name", "名称"], ["phone", "值班电话"]];
const GRID_FIELDS = [["name", "名称"], ["village", "所属村"]];
const NEW_GRID_FIELDS = [["code", "网格代码"], ["name", "名称"], ["village", "所属村"], ["latitude", "中心纬度"],
                         ["longitude", "中心经度"], ["radius_m", "半径(米)"]];
const NUMBERS = ["latitude", "longitude", "radius_m"];

const EditForm = {
  components: { ErrorBox, FieldError },
  props: { title: String, fields: Array, values: Object, method: String, path: String },
  emits: ["saved", "cancel"],
  setup(props, { emit }) {
    const state = reactive({ ...props.values }), error = ref(null), sending = ref(false);
    async function submit() {
      sending.value = true;
      error.value = null;
      const body = {};
      for (const [name] of props.fields) {
        const value = state[name];
        if (value === undefined || value === null || (value === "" && props.method === "POST")) continue;
        if (value === props.values[name] && props.method === "PATCH") continue;  // only what changed
        body[name] = NUMBERS.includes(name) && value !== "" ? Number(value) : value;
      }
      if (props.method === "POST" && body.latitude !== undefined) {
        body.centre = { latitude: body.latitude, longitude: body.longitude };
        delete body.latitude;
        delete body.longitude;
      }
      try {
        await call(props.method, props.path, body);
        emit("saved");
      } catch (e) { error.value = e; } finally { sending.value = false; }
    }
    return { state, error, sending, submit };
  },
  template: `<form class="wb-form" data-form="place" @submit.prevent="submit">
      <van-nav-bar :title="title" />
      <template v-for="[name, label] in fields" :key="name">
        <van-field v-model="state[name]" :name="name" :label="label" placeholder="请填写"
                   :error="!!error && (error.field === name || error.field === 'centre.' + name)" />
        <FieldError :error="error" :field="name" />
      </template>
      <ErrorBox :error="error && !fields.some(f => f[0] === error.field) ? error : null" :retry="submit" />
      <div class="buttons"><van-button native-type="button" @click="$emit('cancel')">返回</van-button>
        <van-button type="primary" native-type="submit" :loading="sending" loading-text="保存中…">保存</van-button></div>
    </form>`,
};

export const Places = {
  components: { ErrorBox, EditForm },
  setup() {
    const departments = ref([]), grids = ref([]), error = ref(null), editing = ref(null);
    async function load() {
      try {
        departments.value = (await get("/departments")).items;
        grids.value = (await get("/grids", { include_inactive: true })).features.map((f) => f.properties);
        error.value = null;
      } catch (e) { error.value = e; }
    }
    async function setActive(kind, code, active) {
      try {
        await call("PATCH", `/admin/${kind}/${code}`, { active });
        vant.showToast(active ? "已启用" : "已停用");
        await load();
      } catch (e) { error.value = e; }
    }
    const editDepartment = (d) => { editing.value = { title: `修改 ${d.name}`, fields: DEPARTMENT_FIELDS, method: "PATCH",
                                                     path: `/admin/departments/${d.code}`, values: { name: d.name, phone: d.phone || "" } }; };
    const editGrid = (g) => { editing.value = { title: `修改 ${g.name}`, fields: GRID_FIELDS, method: "PATCH",
                                               path: `/admin/grids/${g.code}`, values: { name: g.name, village: g.village } }; };
    const newGrid = () => { editing.value = { title: "新增网格", fields: NEW_GRID_FIELDS, method: "POST", path: "/admin/grids",
                                              values: {} }; };
    async function saved() { editing.value = null; vant.showToast("已保存"); await load(); }
    onMounted(load);
    return { departments, grids, error, editing, load, setActive, editDepartment, editGrid, newGrid, saved };
  },
  template: `<div>
      <ErrorBox :error="error" :retry="load" />
      <van-cell-group title="部门(点名称修改)" inset>
        <van-cell v-for="d in departments" :key="d.code" :data-department="d.code" :title="d.name" is-link
                  :label="(d.duties || []).join('、') + (d.phone ? ' · 电话 ' + d.phone : '')" @click="editDepartment(d)">
          <template #right-icon><van-switch :model-value="d.active" size="22" @click.stop
              @update:model-value="v => setActive('departments', d.code, v)" /></template>
        </van-cell></van-cell-group>
      <van-cell-group title="网格(点名称修改)" inset>
        <van-cell v-for="g in grids" :key="g.code" :data-grid="g.code" :title="g.name" is-link @click="editGrid(g)"
                  :label="g.village + (g.workers.length ? ' · 网格员 ' + g.workers.join('、') : ' · 暂无网格员')">
          <template #right-icon><van-switch :model-value="g.active !== false" size="22" @click.stop
              @update:model-value="v => setActive('grids', g.code, v)" /></template>
        </van-cell>
      </van-cell-group>
      <div class="wb-section"><van-button block icon="plus" @click="newGrid">新增网格</van-button></div>
      <van-popup :show="!!editing" position="bottom" round closeable @update:show="v => { if (!v) editing = null }">
        <EditForm v-if="editing" v-bind="editing" @saved="saved" @cancel="editing = null" />
      </van-popup>
    </div>`,
};
