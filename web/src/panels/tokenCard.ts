// The hover card: one floating element, shown beside a token on mouse hover or keyboard
// focus, hidden on leave, blur or Escape. Panels hand it a function that builds the content.

import { h } from "../lib/dom";

let card: HTMLDivElement | null = null;
let owner: Element | null = null;

function cardElement(): HTMLDivElement {
  if (card === null || !card.isConnected) {
    card = h("div", { class: "sc-card", role: "tooltip", id: "sc-card", hidden: true });
    document.body.append(card);
  }
  return card;
}

export function showCard(target: HTMLElement, content: () => Node): void {
  const el = cardElement();
  owner = target;
  el.replaceChildren(content());
  el.hidden = false;
  target.setAttribute("aria-describedby", "sc-card");
  const box = target.getBoundingClientRect();
  const width = el.offsetWidth;
  const left = Math.max(
    4,
    Math.min(
      box.left + window.scrollX,
      window.scrollX + document.documentElement.clientWidth - width - 4,
    ),
  );
  el.style.left = `${left}px`;
  el.style.top = `${box.bottom + window.scrollY + 4}px`;
}

export function hideCard(target?: Element): void {
  if (card === null || (target !== undefined && target !== owner)) return;
  card.hidden = true;
  owner?.removeAttribute("aria-describedby");
  owner = null;
}

// Wires hover and focus of `el` to the card.
export function withCard(el: HTMLElement, content: () => Node): HTMLElement {
  const show = (): void => showCard(el, content);
  const hide = (): void => hideCard(el);
  el.addEventListener("mouseenter", show);
  el.addEventListener("focus", show);
  el.addEventListener("mouseleave", hide);
  el.addEventListener("blur", hide);
  el.addEventListener("keydown", (event) => {
    if (event.key === "Escape") hide();
  });
  return el;
}
