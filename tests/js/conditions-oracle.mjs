// Evaluates a batch of conditions with the browser snippet, for the differential test
// tests/sdk/test_conditions_differential.py (not a node test itself: it reads stdin).
//
// stdin:  {"cases": [{"condition": {...}, "attributes": {...}}, ...]}
// stdout: {"verdicts": [true | false | "handed" | "error: ...", ...]}, one per case, in order.
//
// A verdict is what the snippet does with an experiment that has that condition and covers
// everybody: true (the visitor is enrolled), false (not targeted) or "handed" (the snippet
// declines to answer: it leaves the condition to the server). Only this file knows how the
// snippet says each of these; when the snippet changes how it marks a condition it cannot
// evaluate, adapt `verdict` below, and nothing else.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { loadSnippet } from './fake-browser.mjs';

// evaluate()'s reason when the condition holds, and when it does not.
const TARGETED = new Set(['running']);
const NOT_TARGETED = new Set(['not_targeted']);
const VISITOR = 'differential-visitor';

const page = loadSnippet();
const { core } = page.splitwerk;
// Conditions and attributes are parsed in the page's realm, as the snippet would receive them.
const pageJson = vm.runInContext('JSON', page.window);

const experimentWith = (condition) =>
  pageJson.parse(
    JSON.stringify({
      key: 'differential',
      status: 'running',
      coverage: 10000,
      variants: [{ key: 'only', allocation: 10000 }],
      conditions: condition,
    }),
  );

/**
 * The snippet's answer for one condition: true, false, or "handed" — evaluate() answers null
 * for a condition only the server can decide (an operator the snippet lacks, an integer
 * beyond 2^53). A condition the snippet refuses throws, and the caller reports the error.
 */
function verdict(condition, attributes) {
  const result = core.evaluate(experimentWith(condition), VISITOR, attributes);
  if (result === null) return 'handed';
  if (TARGETED.has(result.reason)) return true;
  if (NOT_TARGETED.has(result.reason)) return false;
  return `unexpected reason: ${result.reason}`;
}

const input = JSON.parse(readFileSync(0, 'utf8'));
const verdicts = input.cases.map(({ condition, attributes }) => {
  try {
    return verdict(condition, pageJson.parse(JSON.stringify(attributes)));
  } catch (error) {
    return `error: ${error}`;
  }
});
process.stdout.write(JSON.stringify({ verdicts }));
