// The DOM helpers every view uses: building elements, and writing text and properties only when
// they changed (a rewrite would restart screen readers' live regions and cost a layout).

/** `el('li', {class: 'best'}, child, 'text')`: an element with properties (or attributes, for
 *  string values that are not properties) and children. */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** `node[key] = value` only when it differs: writing a reflected property such as a fieldset's
 *  `disabled` restyles the element (and all its descendants), even with the same value, and the
 *  page draws several times a second while it trains. */
export function setProp(node, key, value) {
  const v = typeof node[key] === 'boolean' ? Boolean(value) : value;
  if (node[key] !== v) node[key] = v;
}

/** `node.style[name] = value` only when it differs (see setProp). */
export function setStyle(node, name, value) {
  if (node.style[name] !== value) node.style[name] = value;
}
