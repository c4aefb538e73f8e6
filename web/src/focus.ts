// Where keyboard focus goes when the element that had it is gone (a room
// left, a dialog whose opener vanished, a call ended): the message box of
// the open room, else the selected room in the list, else the list.
export function focusSensibly(): void {
  const target =
    document.querySelector<HTMLElement>("#composer-input") ??
    document.querySelector<HTMLElement>(".room-list .room-button[aria-current]") ??
    document.querySelector<HTMLElement>(".room-list .room-button") ??
    document.querySelector<HTMLElement>("main h1, main [tabindex='-1']");
  target?.focus();
}

/** focusSensibly, unless something already has focus. */
export function focusIfLost(): void {
  const a = document.activeElement;
  if (!a || a === document.body || !a.isConnected) focusSensibly();
}
