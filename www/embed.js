// embed.html: one <skywatch-trainer> filling the frame, configured from the query string.
const ALLOWED = ['preset', 'epochs', 'train-size', 'augment', 'seed', 'data-url', 'backend', 'recipe', 'autostart', 'compact', 'theme', 'full-page'];
const el = document.createElement('skywatch-trainer');
for (const [key, value] of new URLSearchParams(location.search)) {
  if (ALLOWED.includes(key)) el.setAttribute(key, value);
}
document.body.append(el);
