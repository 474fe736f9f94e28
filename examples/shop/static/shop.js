// Page script of the example shop: consent banner, add-to-cart conversion, browser variants.
// A file, not inline, because the shop's CSP allows no inline script. It runs `defer`; the
// Splitwerk snippet runs `async`, so the snippet may arrive before this file, after it, or
// never (server down, blocked): every path below ends with the page usable and visible.
(function () {
  'use strict';

  const HIDE_CLASS = 'splitwerk-loading'; // the snippet's anti-flicker class on <html>
  const ANTI_FLICKER_MS = 800; // cap when the script tag names none; as in app.py
  const COLOR = /^#[0-9a-fA-F]{6}$/; // a payload colour is used only when it is plain hex
  const root = document.documentElement;
  const snippet = document.getElementById('splitwerk-snippet');

  const reveal = () => root.classList.remove(HIDE_CLASS);

  // Calls fn(splitwerk) once the snippet has run; never when it failed to load.
  function withSnippet(fn) {
    if (window.splitwerk) fn(window.splitwerk);
    else if (snippet) snippet.addEventListener('load', () => window.splitwerk && fn(window.splitwerk));
  }

  // The demo experiment's payload {color, note} dresses the button and the note under it.
  function dress(variant, payload) {
    const p = payload && typeof payload === 'object' ? payload : {};
    if (COLOR.test(p.color)) root.style.setProperty('--checkout-color', p.color);
    const note = document.getElementById('checkout-note');
    note.textContent = typeof p.note === 'string' ? p.note : '';
    note.hidden = !note.textContent;
    document.getElementById('checkout-button').dataset.variant = variant;
  }

  // Pages whose variant the browser assigns (the snippet tag names the experiment): the
  // elements stay hidden until then, at most for the cap, also when the snippet never loads
  // (its own timer cannot run then). The variant is applied whenever it comes, even if the
  // snippet was quicker than this file and has already revealed the page.
  if (snippet && snippet.dataset.experiments) {
    if (root.classList.contains(HIDE_CLASS)) {
      setTimeout(reveal, +snippet.dataset.antiFlickerMs || ANTI_FLICKER_MS);
      snippet.addEventListener('error', reveal);
    }
    withSnippet((splitwerk) => splitwerk.onVariant('checkout-button', dress));
  }

  // The conversion goes from the browser; flush() sends the beacon before the page unloads.
  document.querySelectorAll('form[data-track]').forEach((form) =>
    form.addEventListener('submit', () =>
      withSnippet((splitwerk) => {
        splitwerk.track(form.dataset.track);
        splitwerk.flush();
      })
    )
  );

  // The banner works without JavaScript (a form post and a redirect). With it, the page
  // stays, and the snippet learns the answer at once: on "agree" it stores the visitor
  // cookie and enrols what this page showed.
  const consentForm = document.getElementById('consent-form');
  if (consentForm) {
    consentForm.addEventListener('submit', (event) => {
      const choice = event.submitter && event.submitter.value;
      if (!choice) return;
      event.preventDefault();
      const body = new URLSearchParams(new FormData(consentForm));
      body.set('choice', choice);
      fetch(consentForm.action, { method: 'POST', body, redirect: 'manual' })
        .then(() => {
          document.getElementById('consent-banner').hidden = true;
          withSnippet((splitwerk) => splitwerk.consent(choice === 'agree'));
        })
        .catch(() => {
          // the plain post still records the answer; submit() alone would lose the button's value
          const field = Object.assign(document.createElement('input'), { type: 'hidden', name: 'choice', value: choice });
          consentForm.append(field);
          consentForm.submit();
        });
    });
  }
})();
