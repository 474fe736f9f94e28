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
// evaluate, adapt HANDED_REASONS or `verdict` below, and nothing else.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { loadSnippet } from './fake-browser.mjs';

// evaluate()'s reason when the condition holds, and when it does not (the snippet's old name
// and the server's name, so that the script works before and after the rename).
const TARGETED = new Set(['running']);
const NOT_TARGETED = new Set(['conditions', 'not_targeted']);
// Any other reason for a running experiment that covers everybody means "not mine to answer".
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

/** The snippet's answer for one condition, as true, false or "handed". */
function verdict(condition, attributes) {
  const outcome = (c) => core.evaluate(experimentWith(c), VISITOR, attributes).reason;
  const reason = outcome(condition);
  if (!TARGETED.has(reason) && !NOT_TARGETED.has(reason)) return 'handed';
  const holds = TARGETED.has(reason);
  // Today's snippet declines a condition with an operator it lacks by targeting nobody,
  // whichever way the condition is asked: the condition and its negation then both fail,
  // which no evaluation can do. That is its "handed to the server" mark.
  if (!holds && !TARGETED.has(outcome({ $not: condition }))) return 'handed';
  return holds;
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
