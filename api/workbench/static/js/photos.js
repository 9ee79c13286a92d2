// Photos from the phone's camera or gallery: resized in the browser (longest side 1600 px, JPEG) before
// POST /api/v1/media, so a 12-MP photo is a few hundred KB on 4G; the field's value is [{id, url}].
import { call } from "./api.js";
import { ErrorBox } from "./ui.js";

const { ref } = Vue;
export const MAX_SIDE = 1600;
export const MAX_PHOTOS = 9;

async function decode(file) {
  if (window.createImageBitmap) {
    try { return await createImageBitmap(file, { imageOrientation: "from-image" }); } catch { /* fall back */ }
  }
  const url = URL.createObjectURL(file);
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    return image;
  } finally { URL.revokeObjectURL(url); }
}

export async function resize(file) {
  let image;
  try { image = await decode(file); } catch { throw new Error("无法读取这张照片,请换一张或重新拍摄"); }
  const width = image.width, height = image.height;
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) => canvas.toBlob(
    (blob) => (blob ? resolve(blob) : reject(new Error("照片压缩失败,请重试"))), "image/jpeg", 0.85));
}

export async function upload(file) {
  const blob = await resize(file);
  const form = new FormData();
  form.append("file", blob, "photo.jpg");
  return call("POST", "/media", form);
}

export const PhotoPicker = {
  components: { ErrorBox },
  props: { modelValue: { type: Array, default: () => [] } },
  emits: ["update:modelValue"],
  setup(props, { emit }) {
    const uploading = ref(0), error = ref(null), camera = ref(null), gallery = ref(null);
    async function picked(event) {
      const files = [...event.target.files].slice(0, MAX_PHOTOS - props.modelValue.length);
      event.target.value = "";
      error.value = null;
      for (const file of files) {
        uploading.value += 1;
        try {
          const media = await upload(file);
          emit("update:modelValue", [...props.modelValue, { id: media.id, url: media.url }]);
        } catch (e) {
          error.value = e.advice ? e : { message: `${e.message}` };
        } finally { uploading.value -= 1; }
      }
    }
    const remove = (id) => emit("update:modelValue", props.modelValue.filter((p) => p.id !== id));
    return { uploading, error, camera, gallery, picked, remove, MAX_PHOTOS };
  },
  template: `<div class="wb-section wb-photo-picker">
      <div class="wb-photos">
        <div v-for="p in modelValue" :key="p.id" style="position:relative">
          <img :src="p.url" alt="已上传的照片" data-test="uploaded-photo">
          <van-icon name="clear" size="22" style="position:absolute;top:-8px;right:-8px;color:#ee0a24"
                    @click="remove(p.id)" aria-label="删除这张照片" />
        </div>
      </div>
      <div v-if="modelValue.length < MAX_PHOTOS" style="display:flex;gap:10px;margin-top:8px">
        <van-button icon="photograph" @click="camera.click()" style="flex:1;min-height:44px">拍照</van-button>
        <van-button icon="photo-o" @click="gallery.click()" style="flex:1;min-height:44px">从相册选</van-button>
      </div>
      <input ref="camera" type="file" accept="image/*" capture="environment" hidden @change="picked" data-test="camera">
      <input ref="gallery" type="file" accept="image/*" multiple hidden @change="picked" data-test="gallery">
      <div v-if="uploading" class="wb-photo-note"><van-loading size="14" /> 正在压缩并上传 {{ uploading }} 张照片…</div>
      <div class="wb-photo-note">最多 {{ MAX_PHOTOS }} 张,上传前自动压缩</div>
      <ErrorBox :error="error" />
    </div>`,
};
