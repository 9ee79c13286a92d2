// An order's page: the resident's words, photos, place, timeline and similar orders, and the actions the API
// offers this reader (detail.actions), each in its own form.
import { get } from "./api.js";
import { ErrorBox, clock, countdown, when } from "./ui.js";
import { ActionForm, FORMS, departmentName } from "./actions.js";

const { ref, computed, onMounted, watch } = Vue;

// A dispatcher may also merge a duplicate while they may still close it (the API answers if it cannot).
const MERGE_WHEN = "invalidate";

export const OrderPage = {
  components: { ErrorBox, ActionForm },
  props: { number: String },
  setup(props) {
    const order = ref(null), error = ref(null), open = ref(null), notice = ref(null), preset = ref(null);
    async function load() {
      try { order.value = await get(`/orders/${props.number}`); error.value = null; } catch (e) { error.value = e; }
    }
    onMounted(load);
    watch(() => props.number, load);
    const actions = computed(() => {
      if (!order.value) return [];
      const offered = order.value.actions.filter((a) => FORMS[a] || a === "rate");
      if (offered.includes(MERGE_WHEN) && !offered.includes("merge")) offered.push("merge");
      return offered;
    });
    const due = computed(() => order.value && countdown(order.value, clock.now));
    const phone = computed(() => order.value?.resident?.phone);
    const callable = computed(() => phone.value && !phone.value.includes("*"));
    const suggestions = computed(() => {  // the router's top three; before the API keeps them, its first choice
      const o = order.value;
      if (o?.suggestions) return o.suggestions;
      const r = o?.routing;
      return r?.predicted_department ? [{ category: r.predicted_category, department: r.predicted_department,
                                          confidence: r.confidence ?? 0 }] : [];
    });
    function start(action, values = null) {
      if (action === "rate") { location.href = `/m/survey/${props.number}`; return; }
      preset.value = values;
      open.value = action;
    }
    function done(detail, title) {
      order.value = detail;
      open.value = null;
      notice.value = `${title}成功`;
      vant.showToast({ message: `${title}成功`, type: "success" });
    }
    const back = () => (history.length > 1 ? history.back() : (location.hash = "#/"));
    const preview = (url) => {
      const urls = order.value.photos.filter((x) => x.url && x.kind === "image").map((x) => x.url);
      vant.showImagePreview({ images: urls, startPosition: Math.max(0, urls.indexOf(url)) });
    };
    return { back, preview, order, error, open, notice, preset, load, actions, due, phone, callable, suggestions, start, done,
             when, FORMS, departmentName };
  },
  template: `<div class="wb-order-page">
      <van-nav-bar :title="'工单 ' + number" left-text="返回" left-arrow @click-left="back" />
      <ErrorBox :error="error" :retry="load" />
      <div v-if="!order && !error" class="wb-empty"><van-loading>加载中…</van-loading></div>
      <template v-if="order">
        <div class="wb-card">
          <div style="display:flex;justify-content:space-between;gap:8px;flex-wrap:wrap">
            <van-tag size="large" type="primary" data-test="state">{{ order.state_label }}</van-tag>
            <span v-if="due" class="wb-deadline" :class="due.cls">{{ due.text }}</span>
          </div>
          <p style="font-size:16px;line-height:1.6;white-space:pre-wrap" data-test="text">{{ order.text }}</p>
          <dl class="wb-kv">
            <dt>紧急程度</dt><dd>{{ order.urgency }}</dd>
            <template v-if="order.category"><dt>分类</dt><dd>{{ order.category }}</dd></template>
            <template v-if="order.department"><dt>承办部门</dt><dd>{{ order.department.name }}</dd></template>
            <template v-if="order.grid"><dt>网格</dt><dd>{{ order.grid.name }}</dd></template>
            <dt>提交时间</dt><dd>{{ when(order.submitted_at) }}</dd>
            <template v-if="order.resident"><dt>群众</dt><dd>{{ order.resident.name }}
              <a v-if="callable" :href="'tel:' + phone" data-test="call">📞 {{ phone }}</a>
              <span v-else-if="phone">{{ phone }}</span></dd></template>
            <template v-if="order.accepted_by"><dt>承办人</dt><dd>{{ order.accepted_by.name }}</dd></template>
            <template v-if="order.extension_days_requested"><dt>延期申请</dt><dd>{{ order.extension_days_requested }} 天,待审批</dd></template>
            <template v-if="order.result"><dt>办理结果</dt><dd>{{ order.result }}</dd></template>
          </dl>
        </div>
        <div class="wb-card" v-if="order.location">
          <h3>位置</h3>
          <div>{{ order.location.label }}</div>
          <div v-if="order.location.latitude !== null">
            <a :href="'geo:' + order.location.latitude + ',' + order.location.longitude" data-test="geo">
              坐标 {{ order.location.latitude.toFixed(5) }}, {{ order.location.longitude.toFixed(5) }}(在地图应用中打开)</a>
          </div>
        </div>
        <div class="wb-card" v-if="order.photos.length">
          <h3>照片与语音</h3>
          <div class="wb-photos">
            <template v-for="p in order.photos" :key="p.id">
              <img v-if="p.url && p.kind === 'image'" :src="p.url" :alt="p.status_label || '照片'" data-test="photo"
                   @click="preview(p.url)">
              <audio v-else-if="p.url" :src="p.url" controls></audio>
              <span v-else class="wb-photo-note">{{ p.status_label }}</span>
            </template>
          </div>
        </div>
        <div class="wb-card" v-if="suggestions.length && actions.includes('dispatch')">
          <h3>系统建议</h3>
          <div class="wb-suggest">
            <van-button v-for="s in suggestions" :key="s.department" plain type="primary"
              @click="start('dispatch', { department: s.department })">
              {{ s.category }} → {{ departmentName(s.department) }}({{ Math.round(s.confidence * 100) }}%)</van-button>
          </div>
        </div>
        <div class="wb-actions" v-if="actions.length" data-test="actions">
          <van-button v-for="a in actions" :key="a" :data-action="a" :type="a === 'accept' || a === 'resolve' || a === 'dispatch' || a === 'rate' ? 'primary' : 'default'"
            @click="start(a)">{{ a === 'rate' ? '去评价' : FORMS[a][0] }}</van-button>
        </div>
        <div class="wb-card" v-if="order.merged_into || (order.followers && order.followers.length)">
          <div v-if="order.merged_into">已合并到 <a :href="'#/orders/' + order.merged_into">{{ order.merged_into }}</a>,随它办理</div>
          <div v-if="order.followers && order.followers.length">合并进来的工单:
            <a v-for="f in order.followers" :key="f" :href="'#/orders/' + f" style="margin-right:8px">{{ f }}</a></div>
        </div>
        <div class="wb-card" v-if="order.similar && order.similar.length" data-test="similar">
          <h3>相似工单</h3>
          <div v-for="s in order.similar" :key="s.number" class="wb-similar">
            <a :href="'#/orders/' + s.number">{{ s.number }}</a>
            <span>相似度 {{ Math.round(s.score * 100) }}%<template v-if="s.distance_m !== null && s.distance_m !== undefined"> · 相距 {{ Math.round(s.distance_m) }} 米</template></span>
            <van-button v-if="actions.includes('merge')" size="small" @click="start('merge', { into: s.number })">合并到这张</van-button>
          </div>
        </div>
        <div class="wb-card">
          <h3>处理过程</h3>
          <ul class="wb-timeline" data-test="timeline">
            <li v-for="(e, i) in order.timeline" :key="i">
              <div><b>{{ e.action_label }}</b> · {{ e.actor.role_label }} {{ e.actor.name }}</div>
              <div v-if="e.reason" style="white-space:pre-wrap">{{ e.reason }}</div>
              <div class="when">{{ when(e.at) }}</div>
            </li>
          </ul>
        </div>
        <div class="wb-card" v-if="order.ratings.length">
          <h3>群众评价</h3>
          <div v-for="r in order.ratings" :key="r.round">{{ r.score }} 星 · {{ r.resolved ? '已解决' : '未解决' }}
            <span v-if="r.comment">· {{ r.comment }}</span></div>
        </div>
      </template>
      <van-popup :show="!!open" position="bottom" round closeable :style="{ maxHeight: '90%' }" @update:show="v => { if (!v) open = null }">
        <ActionForm v-if="open" :key="open" :number="number" :action="open" :preset="preset" @done="done" @conflict="load" @cancel="open = null" />
      </van-popup>
    </div>`,
};
