// Page script of the example shop: consent banner, add-to-cart conversion, browser variants.
// A file, not inline, because the shop's CSP allows inline only the embed code and the
// snippet's options. It runs `defer`, after the embed in <head> has defined the command queue
// `window.splitwerk`: its calls wait for the snippet and never throw, also when the snippet is
// slow or never arrives (then the page shows what the server rendered: the control).
(function () {
  'use strict';

  const COLOR = /^#[0-9a-fA-F]{6}$/; // a payload colour is used only when it is plain hex
  const root = document.documentElement;
  // Absent only when the shop runs without the embed code (no snippet_embed).
  const splitwerk = window.splitwerk;
  if (!splitwerk) return;

  // The demo experiment's payload {color, note} dresses the button and the note under it.
  function dress(variant, payload) {
    const p = payload && typeof payload === 'object' ? payload : {};
    if (COLOR.test(p.color)) root.style.setProperty('--checkout-color', p.color);
    const note = document.getElementById('checkout-note');
    note.textContent = typeof p.note === 'string' ? p.note : '';
    note.hidden = !note.textContent;
    document.getElementById('checkout-button').dataset.variant = variant;
  }

  // Pages whose variant the browser assigns (their options name the experiment). The embed
  // hides the marked elements until the snippet has applied the variant, 800 ms at most.
  const options = window.splitwerkConfig || {};
  if ((options.experiments || []).includes('checkout-button')) {
    splitwerk.onVariant('checkout-button', dress);
  }

  // The conversion goes from the browser; flush() sends the beacon before the page unloads.
  document.querySelectorAll('form[data-track]').forEach((form) =>
    form.addEventListener('submit', () => {
      splitwerk.track(form.dataset.track);
      splitwerk.flush();
    })
  );

  // The banner works without JavaScript (a form post and a redirect). With it, the page
  // stays, and the snippet learns the answer at once: on "agree" it stores the visitor
  // cookie, and enrolment starts with the next page.
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
          splitwerk.consent(choice === 'agree');
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
