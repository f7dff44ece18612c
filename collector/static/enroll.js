// Enrols this browser as a release station (collector/station.py). The one-time code comes in the
// link's #fragment, which the browser never sends to a server (so it is in no access log); it is
// taken out of the address bar and history at once.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const T = JSON.parse($('strings').textContent);
  const fmt = (text, values) => String(text).replace(/%\((\w+)\)s/g, (_, k) => (values && k in values ? values[k] : ''));
  function say(text, cls) { $('message').textContent = text; $('message').className = 'message ' + (cls || ''); }
  const station = '/release' + location.search;  // keeps the kiosk's ?lang=
  $('open-station').href = station;
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('code');
  history.replaceState(null, '', location.pathname + location.search);

  function current() {
    try { return JSON.parse(localStorage.getItem('pullprint.terminal') || 'null'); } catch (e) { return null; }
  }

  async function enroll(code) {
    say(T.ui.enrolling);
    let response, data;
    try {
      response = await fetch('/api/v1/terminals/enroll', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                          body: JSON.stringify({code}), credentials: 'omit'});
      data = await response.json().catch(() => ({}));
    } catch (err) {
      say(T.ui.network, 'error'); return;
    }
    if (!response.ok) {
      const mine = current();
      // Opening the same (used) link again on a station it already enrolled: carry on there.
      if (response.status === 403 && mine) {
        say(fmt(T.ui.already_enrolled, {printer: mine.printer}), 'ok');
        $('open-station').hidden = false;
      } else {
        say(data.message || fmt(T.ui.error, {code: response.status}), 'error');
      }
      $('code').focus();
      return;
    }
    localStorage.setItem('pullprint.terminal', JSON.stringify({terminal: data.terminal.id, printer: data.terminal.printer,
                                                               token: data.token}));
    say(fmt(T.ui.enrolled, {printer: data.terminal.printer}), 'ok');
    $('open-station').hidden = false;
    setTimeout(() => location.replace(station), 1500);
  }
  $('enroll').addEventListener('submit', (e) => { e.preventDefault(); const c = $('code').value.trim(); if (c) enroll(c); });
  if (fromLink) enroll(fromLink);
})();
