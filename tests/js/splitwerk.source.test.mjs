// Traffic source detection (splitwerk.core.detectSource) as a table, and its use as an attribute.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSnippet } from './fake-browser.mjs';

const { detectSource } = loadSnippet().splitwerk.core;
const SHOP = 'https://www.shop.example/p/42';

const CASES = [
  // [landing page query, referrer, expected source]
  ['', '', 'direct'],
  ['', 'not a url', 'direct'],
  ['', 'https://www.shop.example/cart', 'direct'], // internal navigation
  ['', 'https://shop.example/', 'direct'], // www. or not, the same site
  ['?fbclid=IwAR0abc', '', 'facebook'],
  ['?gclid=Cj0KCQ', '', 'search'],
  ['?wbraid=abc', '', 'search'],
  ['?gbraid=abc', '', 'search'],
  ['?ttclid=abc', '', 'tiktok'],
  ['?igshid=abc', '', 'instagram'],
  ['?utm_source=facebook&utm_medium=paid_social', '', 'facebook'],
  ['?utm_source=FB', '', 'facebook'],
  ['?utm_source=ig', '', 'instagram'],
  ['?utm_source=instagram_story', '', 'instagram'],
  ['?utm_source=youtube', '', 'youtube'],
  ['?utm_source=twitter', '', 'twitter'],
  ['?utm_source=x', '', 'twitter'],
  ['?utm_source=tiktok', '', 'tiktok'],
  ['?utm_source=google&utm_medium=cpc', '', 'search'],
  ['?utm_source=bing', '', 'search'],
  ['?utm_source=newsletter_2024_11', '', 'newsletter'],
  ['?utm_source=brevo&utm_medium=email', '', 'newsletter'],
  ['?utm_source=brevo&utm_medium=Newsletter', '', 'newsletter'],
  ['?utm_source=affiliate-xyz', '', 'other'],
  ['?utm_source=affiliate-xyz&fbclid=1', '', 'facebook'], // a click id beats an unknown tag
  ['?utm_source=newsletter&fbclid=1', 'https://l.facebook.com/', 'newsletter'], // a known tag beats a click id
  ['?fbclid=1', 'https://www.google.de/', 'facebook'], // a click id beats the referrer
  ['?utm_source=partner', 'https://www.google.de/', 'other'], // a tag beats the referrer
  ['', 'https://l.facebook.com/l.php?u=x', 'facebook'],
  ['', 'https://m.facebook.com/', 'facebook'],
  ['', 'https://www.instagram.com/', 'instagram'],
  ['', 'https://l.instagram.com/', 'instagram'],
  ['', 'https://www.youtube.com/watch?v=1', 'youtube'],
  ['', 'https://youtu.be/abc', 'youtube'],
  ['', 'https://twitter.com/shop', 'twitter'],
  ['', 'https://x.com/shop', 'twitter'],
  ['', 'https://t.co/abc', 'twitter'],
  ['', 'https://www.tiktok.com/@shop', 'tiktok'],
  ['', 'https://www.google.com/', 'search'],
  ['', 'https://www.google.co.uk/', 'search'],
  ['', 'https://www.bing.com/search?q=x', 'search'],
  ['', 'https://duckduckgo.com/', 'search'],
  ['', 'https://www.ecosia.org/', 'search'],
  ['', 'https://de.search.yahoo.com/', 'search'],
  ['', 'https://www.qwant.com/', 'search'],
  ['', 'https://search.brave.com/search?q=x', 'search'], // a source's name is one of its words
  ['?utm_source=search', '', 'search'],
  ['?utm_source=google&gclid=1', '', 'search'],
  ['', 'https://mail.google.com/', 'newsletter'], // webmail: a mailing
  ['', 'https://blog.example.org/best-shoes', 'other'],
  ['', 'https://box.com/', 'other'], // ends in x.com but is not x.com
  ['', 'https://checkout.shop.example/', 'other'], // another host of the shop is still a referrer
];

test('detectSource classifies landing pages and referrers', () => {
  for (const [query, referrer, expected] of CASES) {
    assert.equal(detectSource(SHOP + query, referrer), expected, `${query} from ${referrer || '(none)'}`);
  }
});

test('the detected source is sent as the source attribute', async () => {
  const page = loadSnippet({ href: SHOP + '?utm_source=ig', dataset: { experiments: 'a' } });
  await page.clock.advance(0);
  assert.equal(page.record.fetches[0].body.attributes.source, 'instagram');
});

test('the first touch of the session wins over a later landing page', async () => {
  const first = loadSnippet({ href: SHOP + '?fbclid=1' });
  const stored = first.record.storageWrites.find(([op, key]) => op === 'set' && key === 'splitwerk_source');
  assert.deepEqual(stored, ['set', 'splitwerk_source', 'facebook']);

  // the next page of the same tab, reached from the shop itself, shares sessionStorage
  const again = loadSnippet({
    href: SHOP,
    dataset: { experiments: 'a' },
    overrides: { sessionStorage: first.window.sessionStorage },
  });
  await again.clock.advance(0);
  assert.equal(again.record.fetches[0].body.attributes.source, 'facebook');
});

test('shop attributes from splitwerkConfig are sent beside the source', async () => {
  const page = loadSnippet({ config: { experiments: ['a'], attributes: { country: 'DE' } } });
  await page.clock.advance(0);
  assert.deepEqual({ ...page.record.fetches[0].body.attributes }, { source: 'direct', country: 'DE' });
});
