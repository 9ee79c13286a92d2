// The survey page (/m/survey/<number>) the survey message links to: 1–5 stars, solved or not, a comment →
// POST /api/v1/orders/{n}/rate. The API decides whether the order may be rated and what a low score does.
import { act, get } from "./api.js";
import { ErrorBox, FieldError, draft, when } from "./ui.js";

const { ref, onMounted } = Vue;

export const SurveyPage = {
  components: { ErrorBox, FieldError },
  props: { number: String },
  setup(props) {
    const order = ref(null), error = ref(null), formError = ref(null), sending = ref(false), thanks = ref(null);
    const { state, save, clear } = draft(`survey:${props.number}`, { score: 0, resolved: null, comment: "" });
    async function load() {
      try { order.value = await get(`/orders/${props.number}`); error.value = null; } catch (e) { error.value = e; }
    }
    onMounted(load);
    async function submit() {
      save();
      formError.value = null;
      sending.value = true;
      const body = {};  // what was chosen, as it is: the API says what is missing
      if (state.score) body.score = state.score;
      if (state.resolved !== null) body.resolved = state.resolved;
      if (state.comment) body.comment = state.comment;
      try {
        order.value = await act(`/orders/${props.number}/rate`, body);
        clear();
        thanks.value = "感谢您的评价!";
      } catch (e) {
        formError.value = e;
        if (e.status === 409) load();
      } finally { sending.value = false; }
    }
    const canRate = () => order.value && order.value.actions.includes("rate");
    return { order, error, formError, sending, thanks, state, save, submit, canRate, when };
  },
  template: `<div class="wb-survey">
      <van-nav-bar title="办理结果评价" />
      <ErrorBox :error="error" :retry="load" />
      <div v-if="!order && !error" class="wb-empty"><van-loading>加载中…</van-loading></div>
      <template v-if="order">
        <div class="wb-card">
          <div class="wb-header-extra">工单 {{ order.number }} · {{ order.state_label }}</div>
          <p style="line-height:1.6">{{ order.text }}</p>
          <dl class="wb-kv" v-if="order.result"><dt>办理结果</dt><dd>{{ order.result }}</dd>
            <template v-if="order.resolved_at"><dt>办结时间</dt><dd>{{ when(order.resolved_at) }}</dd></template></dl>
        </div>
        <div v-if="thanks" class="wb-card" data-test="thanks"><h3>{{ thanks }}</h3>
          <p>您的评价已记录。{{ order.state === 'reopened' ? '我们会重新办理,并告诉您进展。' : '' }}</p>
          <van-button block url="/m/#/">查看我的工单</van-button></div>
        <form v-else-if="canRate()" class="wb-card wb-form" data-form="rate" @submit.prevent="submit" @change="save">
          <h3>您对这次办理满意吗?</h3>
          <div class="wb-stars"><van-rate v-model="state.score" :count="5" size="34" gutter="10" @change="save" data-test="stars" /></div>
          <FieldError :error="formError" field="score" />
          <van-cell-group title="问题解决了吗?">
            <van-radio-group v-model="state.resolved" direction="horizontal" style="padding:10px 16px" @change="save">
              <van-radio :name="true" data-test="resolved-yes">已解决</van-radio>
              <van-radio :name="false" data-test="resolved-no">没有解决</van-radio>
            </van-radio-group></van-cell-group>
          <FieldError :error="formError" field="resolved" />
          <van-field v-model="state.comment" name="comment" label="意见建议" type="textarea" rows="3" autosize
                     label-align="top" placeholder="选填" @input="save" />
          <FieldError :error="formError" field="comment" />
          <ErrorBox :error="formError && !['score', 'resolved', 'comment'].includes(formError.field) ? formError : null" :retry="submit" />
          <div class="buttons"><van-button type="primary" block native-type="submit" :loading="sending" loading-text="提交中…">提交评价</van-button></div>
        </form>
        <div v-else class="wb-card" data-test="not-open"><p>这张工单现在{{ order.state_label }},不需要评价。</p>
          <div v-for="r in order.ratings" :key="r.round">第 {{ r.round + 1 }} 次评价:{{ r.score }} 星</div></div>
      </template>
    </div>`,
};
