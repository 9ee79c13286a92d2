// The API client: tokens kept in localStorage, one refresh at a time (refresh tokens are single-use), errors as
// ApiError with the API's Chinese message and field, and a global "busy" count the page shows as progress.
const { reactive } = Vue;

export const API = "/api/v1";
const KEY = "sidan.workbench.tokens";
const TIMEOUT_MS = 30000;

export const net = reactive({ busy: 0, slow: false });
let slowTimer = null;

export class ApiError extends Error {
  constructor(status, code, message, field = null, details = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.details = details;
  }
  // What to tell the person, with what to do next.
  get advice() {
    if (this.status === 0) return "网络连接失败或太慢:请检查网络后点“重试”,已填写的内容会保留。";
    if (this.status === 409) return `${this.message}。工单可能已被他人处理,页面已刷新为最新状态,请查看后再操作。`;
    if (this.status === 401) return "登录已过期,请重新登录。";
    if (this.status === 403) return `${this.message}(当前账号没有这个权限,如有疑问请联系管理员)`;
    if (this.status === 404) return `${this.message}。请确认编号或链接是否正确;仍不行请联系管理员。`;
    if (this.status >= 500) return `${this.message}。请稍后点“重试”;多次失败请联系管理员。`;
    return this.message;
  }
}

export const auth = reactive({ tokens: load(), profile: null });

function load() {
  try { return JSON.parse(localStorage.getItem(KEY)) || null; } catch { return null; }
}

export function saveTokens(tokens) {
  auth.tokens = { access_token: tokens.access_token, refresh_token: tokens.refresh_token, role: tokens.role || null };
  if (tokens.profile) auth.profile = tokens.profile;
  localStorage.setItem(KEY, JSON.stringify(auth.tokens));
}

export function signOut() {
  auth.tokens = null;
  auth.profile = null;
  localStorage.removeItem(KEY);
}

let refreshing = null;

async function refresh() {
  if (!auth.tokens?.refresh_token) throw new ApiError(401, "unauthorized", "请先登录");
  if (!refreshing) {
    const spent = auth.tokens.refresh_token;
    refreshing = send("POST", "/auth/refresh", { refresh_token: spent }, false)
      .then(saveTokens)
      .catch((error) => { if (error.status && error.status < 500) signOut(); throw error; })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

function started() {
  net.busy += 1;
  if (!slowTimer) slowTimer = setTimeout(() => { net.slow = true; }, 1500);
}

function finished() {
  net.busy = Math.max(0, net.busy - 1);
  if (net.busy === 0) { clearTimeout(slowTimer); slowTimer = null; net.slow = false; }
}

async function send(method, path, body, withToken = true, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (withToken && auth.tokens) headers.Authorization = `Bearer ${auth.tokens.access_token}`;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  started();
  let response;
  try {
    response = await fetch(API + path, { method, headers, body: payload, signal: controller.signal });
  } catch {
    throw new ApiError(0, "network", "网络连接失败");
  } finally {
    clearTimeout(timer);
    finished();
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const error = data?.error || {};
    throw new ApiError(response.status, error.code || "http_error",
                       error.message || `请求失败(${response.status})`, error.details?.field || null, error.details);
  }
  return data;
}

// A request with the stored token; on 401 the token is refreshed once and the request repeated.
export async function call(method, path, body, headers = {}) {
  try {
    return await send(method, path, body, true, headers);
  } catch (error) {
    if (error.status !== 401 || !auth.tokens?.refresh_token) throw error;
    await refresh();
    return send(method, path, body, true, headers);
  }
}

export const get = (path, params) => {
  const query = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")) : null;
  return call("GET", query && [...query].length ? `${path}?${query}` : path);
};

// Actions change orders: each carries an Idempotency-Key so a retried tap is not done twice.
export const act = (path, body) => call("POST", path, body ?? {}, { "Idempotency-Key": crypto.randomUUID?.() || `${Date.now()}-${Math.random()}` });

export const anonymous = (method, path, body) => send(method, path, body, false);

export async function loadProfile() {
  auth.profile = await get("/me");
  return auth.profile;
}
