import './style.css';
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js';
import { ApiError, liveClient, query, type ConnectionState, type LiveClient } from './api';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

const $ = <T extends HTMLElement = HTMLElement>(sel: string) => document.querySelector(sel) as T;
const STORE = 'pulse-dashboard';
const MAX_STREAM_ROWS = 50;

// ------------------------------------------------------------------ formatting
let currency = 'EUR';
const int = new Intl.NumberFormat('en-US');
const pct = new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 });
const money = (m: { amount: string; currency?: string } | null | undefined) =>
  m ? new Intl.NumberFormat('en-US', { style: 'currency', currency: m.currency ?? currency }).format(Number(m.amount)) : '–';
const time = (iso: string) => new Date(iso).toLocaleTimeString('en-GB');

function show(el: Element, text: string, raw: string | number) {
  const changed = el.getAttribute('data-value') !== String(raw);
  el.textContent = text;
  el.setAttribute('data-value', String(raw));
  if (changed) { el.classList.remove('flash'); void (el as HTMLElement).offsetWidth; el.classList.add('flash'); }
}

// ------------------------------------------------------------------ GraphQL documents
const VIEWER = `{ viewer { name email role organization { id name currency } } }`;
const CAMPAIGNS = `{ campaigns(first: 200) { edges { node { id name status } } } }`;
const DASHBOARD_KPIS = `subscription { dashboardKpis { activeCampaigns totalReach totalSpent { amount currency }
  totalBudget { amount currency } budgetUtilization scope { name } } }`;
const METRICS = `channel sent delivered failed read clicked deliveryRate cost { amount currency }`;
const CAMPAIGN_KPIS = `subscription($c: ID!) { campaignKpis(campaignId: $c) { status reach
  totals { ${METRICS} } byChannel { ${METRICS} }
  budget { allocated { amount currency } spent { amount currency } remaining { amount currency } utilization } } }`;
const CAMPAIGN = `query($c: ID!) { campaign(id: $c) { id name budget { alerts { id threshold utilization createdAt } } } }`;
const DAILY = `query($c: ID!) { campaign(id: $c) { stats(period: LIFETIME) { daily { day sent viewed clicked } } } }`;
const ALERTS = `subscription { budgetAlerts { id threshold utilization createdAt campaign { id name } } }`;
const STREAM = `subscription($c: ID!, $k: String) { sendStatusChanged(campaignId: $c, resumeKey: $k) {
  cursor status channel changedAt send { externalId recipient { name email } } } }`;

// ------------------------------------------------------------------ state
let apiUrl = '';
let token = '';
let live: LiveClient | null = null;
let orgSubs: Array<() => void> = [];
let campaignSubs: Array<() => void> = [];
let campaignId = '';
let chart: Chart | null = null;
let streamCount = 0;
let streamSerial = 0;
let dailyTimer: number | undefined;

function setConn(state: ConnectionState) {
  const el = $('#conn');
  el.dataset.state = state;
  el.textContent = { connecting: 'connecting…', live: '● live', reconnecting: 'reconnecting…', offline: 'offline' }[state];
}

function fail(message: string) {
  $('#signin-error').textContent = message;
}

// ------------------------------------------------------------------ sign in / out
async function signIn(url: string, tok: string) {
  apiUrl = url.replace(/\/+$/, '');
  token = tok;
  fail('');
  let viewer;
  try {
    viewer = (await query(apiUrl, token, VIEWER)).viewer;
  } catch (e) {
    const err = e as ApiError;
    fail(err.status === 401 ? 'This token is not valid (revoked or mistyped).' : `Cannot reach the API: ${err.message}`);
    return;
  }
  currency = viewer.organization.currency;
  localStorage.setItem(STORE, JSON.stringify({ apiUrl }));
  sessionStorage.setItem(STORE, token);
  $('#who').textContent = `${viewer.name || viewer.email} · ${viewer.role} · ${viewer.organization.name}`;
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#signout').hidden = false;
  live = liveClient(apiUrl, token, setConn, () => { signOut(); fail('The token was refused or revoked.'); },
                    refreshAfterReconnect);
  orgSubs.push(live.subscribe(DASHBOARD_KPIS, {}, (d) => renderOrg(d.dashboardKpis)));
  orgSubs.push(live.subscribe(ALERTS, {}, (d) => onAlert(d.budgetAlerts)));
  await loadCampaigns();
}

function signOut() {
  closeCampaign();
  orgSubs.forEach((dispose) => dispose());
  orgSubs = [];
  live?.dispose();
  live = null;
  sessionStorage.removeItem(STORE);
  $('#app').hidden = true;
  $('#signin').hidden = false;
  $('#signout').hidden = true;
  $('#who').textContent = '';
}

async function loadCampaigns() {
  const data = await query(apiUrl, token, CAMPAIGNS);
  const select = $<HTMLSelectElement>('#campaign-select');
  select.length = 1;
  for (const { node } of data.campaigns.edges) {
    select.add(new Option(`${node.name} (${node.status.toLowerCase()})`, node.id));
  }
}

// ------------------------------------------------------------------ organization
function renderOrg(k: any) {
  $('#scope-name').textContent = k.scope?.name ? `· ${k.scope.name}` : '';
  show($('[data-kpi="activeCampaigns"]'), int.format(k.activeCampaigns), k.activeCampaigns);
  show($('[data-kpi="totalReach"]'), int.format(k.totalReach), k.totalReach);
  show($('[data-kpi="totalSpent"]'), money(k.totalSpent), k.totalSpent.amount);
  show($('[data-kpi="totalBudget"]'), money(k.totalBudget), k.totalBudget.amount);
  show($('[data-kpi="budgetUtilization"]'), pct.format(k.budgetUtilization), k.budgetUtilization);
}

// ------------------------------------------------------------------ one campaign
function closeCampaign() {
  campaignSubs.forEach((dispose) => dispose());
  campaignSubs = [];
  campaignId = '';
  window.clearTimeout(dailyTimer);
  $('#campaign').hidden = true;
}

async function openCampaign(id: string) {
  closeCampaign();
  if (!id || !live) return;
  campaignId = id;
  const data = await query(apiUrl, token, CAMPAIGN, { c: id });
  if (campaignId !== id) return;
  $('#campaign-name').textContent = data.campaign.name;
  renderAlerts(data.campaign.budget.alerts);
  streamCount = 0;
  $('#stream tbody').replaceChildren();
  renderStreamCount();
  $('#campaign').hidden = false;
  campaignSubs.push(live.subscribe(CAMPAIGN_KPIS, { c: id }, (d) => { renderCampaign(d.campaignKpis); scheduleDaily(); }));
  // A resume key of its own: this subscription resumes after its own last cursor on reconnect.
  const key = `${id}#${++streamSerial}`;
  campaignSubs.push(live.subscribe(STREAM, { c: id, k: key }, (d) => onSendChange(d.sendStatusChanged),
    { resumeKey: key, cursor: (d: any) => d.sendStatusChanged?.cursor }));
  await loadDaily();
}

// Alerts raised while the connection was down are not replayed by budgetAlerts: read them again.
async function refreshAfterReconnect() {
  const id = campaignId;
  if (!id) return;
  const data = await query(apiUrl, token, CAMPAIGN, { c: id }).catch(() => null);
  if (data && id === campaignId) renderAlerts(data.campaign.budget.alerts);
  scheduleDaily();
}

function renderCampaign(k: any) {
  const status = $('#campaign-status');
  status.textContent = k.status;
  status.dataset.value = k.status;
  show($('[data-ckpi="reach"]'), int.format(k.reach), k.reach);
  for (const name of ['sent', 'delivered', 'read', 'clicked', 'failed']) {
    show($(`[data-ckpi="${name}"]`), int.format(k.totals[name]), k.totals[name]);
  }
  $('#channels tbody').replaceChildren(...k.byChannel.map((c: any) => {
    const tr = document.createElement('tr');
    tr.dataset.channel = c.channel;
    for (const text of [c.channel, int.format(c.sent), int.format(c.delivered), int.format(c.failed), int.format(c.read),
                        int.format(c.clicked), pct.format(c.deliveryRate), money(c.cost)]) {
      tr.insertCell().textContent = text;
    }
    return tr;
  }));
  const b = k.budget;
  show($('[data-budget="allocated"]'), Number(b.allocated.amount) ? money(b.allocated) : 'no budget', b.allocated.amount);
  show($('[data-budget="spent"]'), money(b.spent), b.spent.amount);
  show($('[data-budget="remaining"]'), Number(b.allocated.amount) ? money(b.remaining) : '–', b.remaining.amount);
  show($('[data-budget="utilization"]'), pct.format(b.utilization), b.utilization);
  const fill = $('#budget-fill');
  fill.style.width = `${Math.min(100, b.utilization * 100)}%`;
  fill.className = `fill${b.utilization >= 1 ? ' over' : b.utilization >= 0.8 ? ' warn' : ''}`;
}

const alertsShown: any[] = [];
function renderAlerts(alerts: any[]) {
  alertsShown.length = 0;
  alertsShown.push(...alerts);
  drawAlerts();
}
function onAlert(alert: any) {
  if (alert.campaign.id !== campaignId || alertsShown.some((a) => a.id === alert.id)) return;
  alertsShown.push(alert);
  drawAlerts();
}
function drawAlerts() {
  const ul = $('#alerts');
  if (!alertsShown.length) { ul.innerHTML = '<li class="muted">No alert.</li>'; return; }
  ul.replaceChildren(...[...alertsShown].sort((a, b) => b.threshold - a.threshold).map((a) => {
    const li = document.createElement('li');
    li.dataset.threshold = String(a.threshold);
    li.textContent = `${a.threshold} % of the budget reached (${pct.format(a.utilization)}) · ${new Date(a.createdAt).toLocaleString('en-GB')}`;
    return li;
  }));
}

function onSendChange(e: any) {
  streamCount += 1;
  renderStreamCount();
  const tr = document.createElement('tr');
  tr.dataset.cursor = e.cursor;
  const who = e.send.recipient ? (e.send.recipient.name || e.send.recipient.email) : '—';
  for (const [text, cls] of [[time(e.changedAt), ''], [who, ''], [e.channel, ''], [e.status, `status-${e.status}`],
                             [e.send.externalId ?? '', 'muted']]) {
    const td = tr.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
  }
  const body = $('#stream tbody');
  body.prepend(tr);
  while (body.children.length > MAX_STREAM_ROWS) body.lastElementChild!.remove();
}
function renderStreamCount() {
  const el = $('#stream-count');
  el.dataset.count = String(streamCount);
  el.textContent = `${int.format(streamCount)} event${streamCount === 1 ? '' : 's'} received`;
}

// ------------------------------------------------------------------ daily chart (Campaign.stats)
function scheduleDaily() {  // at most one stats query a second while KPIs move
  if (dailyTimer) return;
  dailyTimer = window.setTimeout(() => { dailyTimer = undefined; loadDaily(); }, 1000);
}
async function loadDaily() {
  const id = campaignId;
  if (!id) return;
  const data = await query(apiUrl, token, DAILY, { c: id }).catch(() => null);
  if (!data || id !== campaignId) return;
  const daily = data.campaign.stats.daily;
  const labels = daily.map((d: any) => d.day);
  const datasets = [
    { label: 'Sent', data: daily.map((d: any) => d.sent), backgroundColor: '#2563eb', maxBarThickness: 48 },
    { label: 'Viewed', data: daily.map((d: any) => d.viewed), backgroundColor: '#16a34a', maxBarThickness: 48 },
    { label: 'Clicked', data: daily.map((d: any) => d.clicked), backgroundColor: '#d97706', maxBarThickness: 48 },
  ];
  const canvas = $<HTMLCanvasElement>('#daily-chart');
  canvas.dataset.sent = String(daily.reduce((s: number, d: any) => s + d.sent, 0));
  if (!chart) {
    chart = new Chart(canvas, {
      type: 'bar', data: { labels, datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
                 scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  } else {
    chart.data.labels = labels;
    chart.data.datasets.forEach((ds, i) => { ds.data = datasets[i].data; });
    chart.update();
  }
}

// ------------------------------------------------------------------ wiring
$('#signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  signIn($<HTMLInputElement>('#api-url').value.trim(), $<HTMLInputElement>('#token').value.trim());
});
$('#signout').addEventListener('click', signOut);
$<HTMLSelectElement>('#campaign-select').addEventListener('change', (ev) => openCampaign((ev.target as HTMLSelectElement).value));

// Served by `pulse serve` at /dashboard/: the API is this origin. Elsewhere: the last one used.
const saved = JSON.parse(localStorage.getItem(STORE) ?? '{}');
$<HTMLInputElement>('#api-url').value = saved.apiUrl ?? (location.pathname.startsWith('/dashboard') ? location.origin : 'http://127.0.0.1:8000');
const savedToken = sessionStorage.getItem(STORE);
if (savedToken && saved.apiUrl) signIn(saved.apiUrl, savedToken);
