// The dispatch queue (派单): orders waiting for a person to route them, oldest first, with the router's
// suggestions as one-tap buttons; anything else (another department, invalid, merge) on the order's page.
import { act } from "./api.js";
import { ErrorBox, OrderCard } from "./ui.js";
import { departmentName } from "./actions.js";

const { ref, defineAsyncComponent } = Vue;

const QueueItem = {
  components: { OrderCard, ErrorBox },
  props: { order: Object, reload: Function },
  setup(props) {
    const sending = ref(null), error = ref(null);
    async function dispatch(suggestion) {
      sending.value = suggestion.department;
      error.value = null;
      try {
        await act(`/orders/${props.order.number}/dispatch`, { department: suggestion.department,
                                                               category: suggestion.category || undefined });
        vant.showToast({ message: `已派给${departmentName(suggestion.department)}`, type: "success" });
        props.reload();
      } catch (e) {
        error.value = e;
        if (e.status === 409) props.reload();
      } finally { sending.value = null; }
    }
    return { sending, error, dispatch, departmentName };
  },
  template: `<OrderCard :order="order" show-age>
      <div class="wb-suggest" data-test="suggestions">
        <van-button v-for="s in (order.suggestions || [])" :key="s.department" type="primary" plain
          :loading="sending === s.department" :data-department="s.department" @click="dispatch(s)">
          派给 {{ departmentName(s.department) }}<template v-if="s.category"> · {{ s.category }}</template>
          ({{ Math.round(s.confidence * 100) }}%)</van-button>
        <van-button :url="'#/orders/' + order.number" data-test="open">查看并派单 / 不予受理 / 合并</van-button>
      </div>
      <ErrorBox :error="error" />
    </OrderCard>`,
};

export const DispatchQueue = {
  components: { QueueItem, OrderList: defineAsyncComponent(() => import("./lists.js").then((m) => m.OrderList)) },
  template: `<OrderList path="/dispatch-queue" empty="没有等待派单的工单">
      <template #item="{ order, reload }"><QueueItem :order="order" :reload="reload" /></template>
    </OrderList>`,
};
