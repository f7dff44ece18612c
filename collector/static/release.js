// The web release station (collector/station.py). Plain script, no library, no secure-context-only API
// (kiosks may reach the collectors over plain HTTP): every call goes to this origin's terminal API.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const T = JSON.parse($('strings').textContent);
  const lang = document.documentElement.lang || 'en';
  const fmt = (text, values) => String(text).replace(/%\((\w+)\)s/g, (_, k) => (values && k in values ? values[k] : ''));
  const reasonText = (code, fallback) => (T.reasons[code] !== undefined ? T.reasons[code] : (fallback || code));

  // An enrolled station (/release/enroll) keeps its credential here and names its printer through it.
  let enrolled = null;
  try { enrolled = JSON.parse(localStorage.getItem('pullprint.terminal') || 'null'); } catch (e) { enrolled = null; }
  const printer = enrolled ? enrolled.printer : document.body.dataset.printer;
  $('printer-name').textContent = printer || '—';
  const credential = enrolled ? {Authorization: 'Bearer ' + enrolled.token} : {};

  let session = null;        // the session token while someone is logged in
  let listing = null;        // the last listing shown
  let deadline = 0;          // when the session ends without activity (ms, performance.now())
  let lastRefresh = 0;
  let pendingDelete = null;
  let busy = false;

  function say(text, cls) { $('message').textContent = text || ''; $('message').className = 'message ' + (cls || ''); }

  // An Idempotency-Key from getRandomValues (crypto.randomUUID exists only in secure contexts).
  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  class ApiError extends Error {
    constructor(status, data) { super(data.message || ('HTTP ' + status)); this.status = status; this.data = data; }
  }

  // One call; `retry`: a request safe to send again (a login only opens a session; a release carries
  // its Idempotency-Key) is sent once more when the answer was cut off (a node died under it).
  async function call(method, path, body, options) {
    const opts = options || {};
    const headers = {'Content-Type': 'application/json', ...credential, ...(opts.headers || {})};
    for (let attempt = 0; ; attempt++) {
      let response;
      try {
        response = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined,
                                      cache: 'no-store', credentials: 'omit'});
      } catch (err) {
        if (opts.retry && attempt === 0) { await sleep(300); continue; }
        throw new ApiError(0, {error: 'network', message: T.ui.network});
      }
      if (opts.retry && attempt === 0 && [502, 503, 504].includes(response.status)) { await sleep(300); continue; }
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new ApiError(response.status, data);
      return data;
    }
  }
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const sessionPath = () => '/api/v1/sessions/' + encodeURIComponent(session);

  function errorText(err) {
    if (err.status === 0) return T.ui.network;
    const code = err.data && err.data.error;
    if (code && T.reasons[code] !== undefined) return T.reasons[code];
    return (err.data && err.data.message) || fmt(T.ui.error, {code: err.status});
  }

  // --- the printer's own state, from the collectors' SNMP cache -----------------------------------
  async function showPrinterState() {
    if (!printer) return;
    try {
      const s = await call('GET', '/api/v1/printers/' + encodeURIComponent(printer) + '/status');
      const state = s.state || 'unknown';
      $('printer-state').className = 'state state-' + state;
      $('printer-state-text').textContent = T.ui['printer_' + state.replace(/-/g, '_')] || T.ui.printer_unknown;
      const details = [];
      if (s.reason) details.push(reasonText(s.reason, s.message));
      for (const w of s.warnings || []) details.push(reasonText(w, w));
      $('printer-state-detail').textContent = details.join(' · ');
      $('printer-location').textContent = s.location || '';
    } catch (err) {
      $('printer-state').className = 'state state-unknown';
      $('printer-state-text').textContent = T.ui.printer_unknown;
      $('printer-state-detail').textContent = '';
    }
  }

  // --- logging in ---------------------------------------------------------------------------------
  const onLogin = () => !$('login').hidden;
  const pinOpen = () => !$('pin-form').hidden || !$('code-form').hidden;
  let codeSession = false;  // logged in with a guest's release code: one document, no user name to greet

  function focusBadge() {
    if (onLogin() && !pinOpen() && document.activeElement !== $('badge')) $('badge').focus();
  }

  async function login(credentials) {
    if (busy) return;
    if (!printer) { say(T.ui.not_enrolled, 'error'); return; }
    busy = true;
    say(T.ui.logging_in);
    try {
      const data = await call('POST', '/api/v1/sessions', enrolled ? credentials : {printer, ...credentials},
                              {retry: true});
      session = data.session;
      codeSession = 'code' in credentials;
      $('results').hidden = true;
      say('');
      showJobs(data);
    } catch (err) {
      say(errorText(err), 'error');
    } finally {
      busy = false;
      $('badge').value = ''; $('pin').value = ''; $('code').value = '';
      focusBadge();
    }
  }

  $('badge-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const badge = $('badge').value.trim();
    if (badge) login({badge});
  });

  // A keyboard-wedge badge reader types wherever the focus is: on the login screen every key that is
  // not meant for the PIN form goes to the badge field, however long the page has stood idle.
  document.addEventListener('keydown', (e) => {
    if (!onLogin() || pinOpen() || e.target === $('badge') || e.ctrlKey || e.altKey || e.metaKey) return;
    if (e.target.tagName === 'BUTTON' && (e.key === 'Enter' || e.key === ' ' || e.key === 'Tab')) return;
    if (e.key === 'Tab') return;
    if (e.key.length === 1) { e.preventDefault(); $('badge').focus(); $('badge').value += e.key; }
    else if (e.key === 'Enter' && $('badge').value) { e.preventDefault(); $('badge-form').requestSubmit(); }
  });
  $('badge').addEventListener('blur', () => setTimeout(() => {
    if (document.activeElement === document.body || document.activeElement === null) focusBadge();
  }, 200));
  setInterval(() => { if (document.activeElement === document.body || document.activeElement === null) focusBadge(); },
              2000);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) { focusBadge(); showPrinterState(); } });

  // User name + PIN on an on-screen keyboard: letters for the name, a keypad for the PIN.
  let keyTarget = $('user');
  const LETTERS = 'qwertyuiopasdfghjklzxcvbnm'.split('').concat(['.', '-', '_', '1', '2', '3', '4', '5', '6', '7',
                                                                   '8', '9', '0']);
  const DIGITS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'back', '0', 'ok'];
  const backspace = () => { keyTarget.value = keyTarget.value.slice(0, -1); };
  function drawKeys() {
    const keys = $('keys');
    keys.textContent = '';
    const digits = keyTarget === $('pin');
    keys.className = 'keys ' + (digits ? 'digits' : 'letters');
    for (const k of digits ? DIGITS : LETTERS) {
      if (k === 'back') keys.append(keyButton('⌫', T.ui.backspace, backspace));
      else if (k === 'ok') keys.append(keyButton('✓', T.ui.log_in, () => $('pin-form').requestSubmit(), 'ok'));
      else keys.append(keyButton(k, k, () => { keyTarget.value += k; }));
    }
    if (!digits) {
      keys.append(keyButton('⌫', T.ui.backspace, backspace, 'wide'));
      keys.append(keyButton('→', T.ui.to_pin, () => { setKeyTarget($('pin')); $('pin').focus(); }, 'wide'));
    }
  }
  function keyButton(text, label, action, cls) {
    const b = document.createElement('button');
    b.type = 'button'; b.textContent = text; b.setAttribute('aria-label', label);
    if (cls) b.className = cls;
    b.dataset.key = text;
    b.addEventListener('pointerdown', (e) => e.preventDefault());  // a touch keeps the field's focus
    b.addEventListener('click', () => { action(); if (document.activeElement === b) return; keyTarget.focus(); });
    return b;
  }
  function setKeyTarget(field) { if (keyTarget !== field) { keyTarget = field; drawKeys(); } }
  $('user').addEventListener('focus', () => setKeyTarget($('user')));
  $('pin').addEventListener('focus', () => setKeyTarget($('pin')));
  $('show-pin').addEventListener('click', () => {
    $('pin-form').hidden = false; $('show-pin').hidden = true; $('show-code').hidden = true;
    $('badge-form').hidden = true;
    say(T.ui.enter_pin); setKeyTarget($('user')); drawKeys(); $('user').focus();
  });
  function closePin() {
    $('pin-form').hidden = true; $('show-pin').hidden = false; $('show-code').hidden = false;
    $('badge-form').hidden = false;
    $('user').value = ''; $('pin').value = ''; focusBadge();
  }
  $('pin-cancel').addEventListener('click', () => { closePin(); say(''); });
  $('pin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const user = $('user').value.trim(); const pin = $('pin').value;
    if (!user || !pin) { say(T.ui.enter_pin, 'error'); return; }
    closePin();
    login({user, pin});
  });

  // A guest's release code (mailed with the document): digits on a keypad of their own.
  function drawCodeKeys() {
    const keys = $('code-keys');
    keys.textContent = '';
    for (const k of DIGITS) {
      let b;
      if (k === 'back') b = keyButton('⌫', T.ui.backspace, () => { $('code').value = $('code').value.slice(0, -1); });
      else if (k === 'ok') b = keyButton('✓', T.ui.log_in, () => $('code-form').requestSubmit(), 'ok');
      else b = keyButton(k, k, () => { $('code').value += k; });
      b.addEventListener('click', () => $('code').focus());
      keys.append(b);
    }
  }
  $('show-code').addEventListener('click', () => {
    $('code-form').hidden = false; $('show-code').hidden = true; $('show-pin').hidden = true;
    $('badge-form').hidden = true;
    say(T.ui.enter_code); drawCodeKeys(); $('code').focus();
  });
  function closeCode() {
    $('code-form').hidden = true; $('show-code').hidden = false; $('show-pin').hidden = false;
    $('badge-form').hidden = false; $('code').value = ''; focusBadge();
  }
  $('code-cancel').addEventListener('click', () => { closeCode(); say(''); });
  $('code-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const code = $('code').value.replace(/[\s-]/g, '');
    if (!/^[0-9]{10}$/.test(code)) { say(T.ui.code_short, 'error'); return; }
    closeCode();
    login({code});
  });

  // --- the job list ------------------------------------------------------------------------------
  function when(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return '';
    const sameDay = d.toDateString() === new Date().toDateString();
    const time = d.toLocaleTimeString(lang, {hour: '2-digit', minute: '2-digit'});
    return sameDay ? time : d.toLocaleDateString(lang, {day: 'numeric', month: 'short'}) + ' ' + time;
  }
  function size(bytes) {
    if (typeof bytes !== 'number') return '';
    const units = ['B', 'kB', 'MB', 'GB'];
    let value = bytes, unit = 0;
    while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
    return new Intl.NumberFormat(lang, {maximumFractionDigits: unit ? 1 : 0}).format(value) + ' ' + units[unit];
  }
  function pagesText(pages) {
    if (pages === null || pages === undefined) return T.ui.pages_unknown;
    return pages === 1 ? T.ui.page : fmt(T.ui.pages, {n: pages});
  }

  function showJobs(data) {
    listing = data;
    const selected = new Set(Array.from(document.querySelectorAll('#list input:checked'), (b) => b.value));
    const first = !$('jobs').hidden ? false : true;
    $('login').hidden = true; $('jobs').hidden = false;
    $('jobs-title').textContent = codeSession ? T.ui.welcome_code : fmt(T.ui.welcome, {user: data.user});
    const list = $('list');
    list.textContent = '';
    for (const w of data.warnings || []) say(w);
    $('jobs-note').textContent = !data.jobs.length ? T.ui.no_jobs
      : (data.jobs_total > data.jobs.length ? fmt(T.ui.jobs_more, {shown: data.jobs.length, total: data.jobs_total}) : '');
    for (const j of data.jobs) list.append(jobRow(j, first ? null : selected));
    updateButtons();
    restartCountdown(data.idle_seconds);
  }

  function jobRow(j, selected) {
    const li = document.createElement('li');
    li.className = 'job' + (j.available ? '' : ' unavailable');
    li.dataset.job = j.id;
    const interrupted = j.reason === 'interrupted';
    const pick = document.createElement('label');
    pick.className = 'pick';
    const box = document.createElement('input');
    box.type = 'checkbox'; box.value = j.id; box.id = 'job-' + j.id;
    // A job that cannot print now is shown, not offered; an interrupted one may lie in the tray
    // already: never selected for the user (the row's own button prints it again).
    box.disabled = !j.available || interrupted;
    box.checked = !box.disabled && (selected ? selected.has(j.id) : true);
    box.addEventListener('change', () => { li.classList.toggle('selected', box.checked); updateButtons(); });
    li.classList.toggle('selected', box.checked);
    const text = document.createElement('span');
    text.className = 'text';
    const title = document.createElement('span');
    title.className = 'title'; title.textContent = j.title || '—';
    const facts = document.createElement('span');
    facts.className = 'facts';
    const parts = [pagesText(j.pages), j.copies > 1 ? fmt(T.ui.copies, {n: j.copies}) : T.ui.copy,
                   j.color ? T.ui.color : T.ui.mono, j.duplex ? T.ui.duplex : T.ui.simplex];
    if (j.media) parts.push(j.media);
    parts.push(size(j.size), fmt(T.ui.sent, {when: when(j.submitted_at)}), fmt(T.ui.expires, {when: when(j.expires_at)}));
    for (const p of parts) { if (!p) continue; const s = document.createElement('span'); s.textContent = p; facts.append(s); }
    text.append(title, document.createElement('br'), facts);
    if (!j.available || interrupted) {
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = (interrupted ? T.ui.interrupted_tag : T.ui.unavailable) + ': ' + reasonText(j.reason, j.message);
      text.append(document.createElement('br'), tag);
    }
    pick.append(box, text);
    const side = document.createElement('span');
    side.className = 'side';
    if (interrupted) {
      const again = document.createElement('button');
      again.type = 'button'; again.className = 'primary confirm'; again.textContent = T.ui.confirm;
      again.addEventListener('click', () => release({jobs: [j.id], confirm_interrupted: true}));
      side.append(again);
    }
    const del = document.createElement('button');
    del.type = 'button'; del.className = 'secondary delete'; del.textContent = T.ui.delete;
    del.setAttribute('aria-label', T.ui.delete + ': ' + (j.title || ''));
    del.addEventListener('click', () => askDelete(j));
    side.append(del);
    li.append(pick, side);
    return li;
  }

  function updateButtons() {
    const n = document.querySelectorAll('#list input:checked').length;
    const any = listing && listing.jobs.some((j) => j.available && j.reason !== 'interrupted');
    $('release-selected').disabled = n === 0;
    $('release-all').disabled = !any;
  }

  async function refresh() {
    if (!session) return;
    lastRefresh = performance.now();
    try { showJobs(await call('GET', sessionPath())); }
    catch (err) { if (err.status === 401 || err.status === 403) endSession(T.ui.timed_out); else say(errorText(err), 'error'); }
  }

  // --- release and its results -------------------------------------------------------------------
  async function release(body) {
    if (busy || !session) return;
    busy = true;
    say(T.ui.working);
    const titles = new Map((listing ? listing.jobs : []).map((j) => [j.id, j.title]));
    try {
      const answer = await call('POST', sessionPath() + '/release', body,
                                {headers: {'Idempotency-Key': newKey()}, retry: true});
      showResults(answer, titles);
      say('');
    } catch (err) {
      say(errorText(err), 'error');
    } finally {
      busy = false;
    }
    await refresh();
  }

  function outcome(status) {
    if (status === 'printed') return 'printed';
    if (status === 'queued') return 'queued';
    if (status === 'interrupted') return 'interrupted';
    return 'refused';
  }

  function showResults(answer, titles) {
    const list = $('result-list');
    list.textContent = '';
    const counts = {printed: 0, queued: 0, failed: 0};
    for (const r of answer.results || []) {
      const kind = outcome(r.status);
      if (kind === 'printed') counts.printed++; else if (kind === 'queued') counts.queued++; else counts.failed++;
      const li = document.createElement('li');
      li.className = kind; li.dataset.job = r.id; li.dataset.status = r.status;
      const what = document.createElement('span');
      what.className = 'what'; what.textContent = T.ui['result_' + kind];
      const name = document.createElement('span');
      name.className = 'name'; name.textContent = titles.get(r.id) || r.id;
      li.append(what, name);
      if (kind !== 'printed') {
        const why = document.createElement('span');
        why.className = 'why'; why.textContent = reasonText(r.status, r.message);
        li.append(why);
      }
      if (kind === 'interrupted') {
        const again = document.createElement('button');
        again.type = 'button'; again.className = 'primary confirm'; again.textContent = T.ui.confirm;
        again.addEventListener('click', () => release({jobs: [r.id], confirm_interrupted: true}));
        li.append(again);
      }
      list.append(li);
    }
    $('results-summary').textContent = fmt(T.ui.summary, counts);
    const s = answer.suggestion;
    $('suggestion').hidden = !s;
    if (s) $('suggestion').textContent = s.location ? fmt(T.ui.suggestion, {printer: s.id, location: s.location})
                                                    : fmt(T.ui.suggestion_plain, {printer: s.id});
    $('results').hidden = false;
  }

  $('release-selected').addEventListener('click', () => {
    const jobs = Array.from(document.querySelectorAll('#list input:checked'), (b) => b.value);
    if (!jobs.length) { say(T.ui.nothing_selected, 'error'); return; }
    release({jobs});
  });
  $('release-all').addEventListener('click', () => release({all: true}));

  // --- delete one's own job ----------------------------------------------------------------------
  function askDelete(job) {
    pendingDelete = job;
    $('delete-question').textContent = fmt(T.ui.delete_confirm, {title: job.title || ''});
    $('delete-yes').textContent = T.ui.delete_yes; $('delete-no').textContent = T.ui.delete_no;
    $('delete-panel').hidden = false;
    $('delete-no').focus();
  }
  function closeDelete() { $('delete-panel').hidden = true; pendingDelete = null; }
  $('delete-no').addEventListener('click', closeDelete);
  $('delete-panel').addEventListener('keydown', (e) => { if (e.key === 'Escape') closeDelete(); });
  $('delete-yes').addEventListener('click', async () => {
    const job = pendingDelete;
    closeDelete();
    if (!job || !session) return;
    try {
      await call('DELETE', sessionPath() + '/jobs/' + encodeURIComponent(job.id));
      say(T.ui.deleted, 'ok');
    } catch (err) { say(errorText(err), 'error'); }
    await refresh();
  });

  // --- the session's countdown and logout ----------------------------------------------------------
  let ticker = null;
  function restartCountdown(idleSeconds) {
    // A little before the collectors forget the session: the page logs out itself, visibly.
    const seconds = Math.max(5, (idleSeconds || 60) - 2);
    deadline = performance.now() + seconds * 1000;
    if (!ticker) ticker = setInterval(tick, 250);
    tick();
  }
  function tick() {
    if (!session) return;
    const left = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
    $('countdown').textContent = fmt(T.ui.countdown, {s: left});
    $('countdown').classList.toggle('soon', left <= 10);
    if (left === 0) logout(T.ui.timed_out);
  }
  // Any touch or key while logged in counts as activity: the session is renewed (at most every 5 s).
  for (const kind of ['pointerdown', 'keydown']) {
    document.addEventListener(kind, () => {
      if (session && !busy && performance.now() - lastRefresh > 5000) refresh();
    }, true);
  }

  function endSession(message) {
    session = null; listing = null;
    clearInterval(ticker); ticker = null;
    closeDelete();
    $('jobs').hidden = true; $('login').hidden = false; $('results').hidden = true; $('list').textContent = '';
    $('countdown').textContent = '';
    closePin();
    say(message, 'ok');
    focusBadge();
    showPrinterState();
  }
  async function logout(message) {
    const token = session;
    endSession(message);
    if (token) {
      try { await call('DELETE', '/api/v1/sessions/' + encodeURIComponent(token)); } catch (e) { /* ended anyway */ }
    }
  }
  $('logout').addEventListener('click', () => logout(T.ui.logged_out));

  if (!printer) say(T.ui.not_enrolled, 'error');
  showPrinterState();
  setInterval(() => { if (!document.hidden) showPrinterState(); }, 30000);
  focusBadge();
})();
