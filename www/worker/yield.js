// Lets the messages queued meanwhile run between two slices of long work (training, the
// translation test): a message to ourselves, which is not clamped to 4 ms as a nested setTimeout
// is (https://html.spec.whatwg.org/multipage/timers-and-user-prompts.html#timers, step 5).

/** Resolves once the events queued before it have had their turn. */
export const yieldToEvents = () => new Promise((resolve) => {
  const ch = new MessageChannel();
  ch.port1.onmessage = () => resolve();
  ch.port2.postMessage(null);
});
