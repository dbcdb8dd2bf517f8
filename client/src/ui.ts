/** Small DOM helpers shared by the pages. */
import type { Banner } from './banner.ts';

/** The element with this id; throws when the page lacks it (a page/bundle mismatch). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page has no #${id}`);
  return e as T;
}

const ROOM = /^[A-Za-z0-9_-]{1,64}$/;

export function roomFromQuery(params: URLSearchParams): string {
  const r = params.get('room') ?? 'demo';
  return ROOM.test(r) ? r : 'demo';
}

/** /view/<room> and /obs/<room>: the second path segment. */
export function roomFromPath(): string {
  const seg = location.pathname.split('/').filter(Boolean)[1];
  const r = seg ? decodeURIComponent(seg) : 'demo';
  return ROOM.test(r) ? r : 'demo';
}

let lastAction: (() => void) | undefined;

/** Shows a banner: body[data-state], the header pill, and the notice bar with its action button. */
export function setBanner(b: Banner, onAction: () => void): void {
  document.body.dataset['state'] = b.state;
  const pill = document.getElementById('status');
  if (pill) {
    pill.textContent = b.pill;
    pill.dataset['tone'] = b.tone;
  }
  const bar = document.getElementById('notice');
  if (!bar) return;
  bar.hidden = b.message === '';
  bar.dataset['tone'] = b.tone;
  const text = document.getElementById('notice-text');
  if (text && text.textContent !== b.message) text.textContent = b.message;
  const btn = document.getElementById('notice-action') as HTMLButtonElement | null;
  if (!btn) return;
  btn.hidden = !b.action;
  btn.textContent = b.action === 'retry-camera' ? 'Try again' : b.action === 'retry-now' ? 'Retry now' : 'Reload';
  if (lastAction) btn.removeEventListener('click', lastAction);
  lastAction = onAction;
  btn.addEventListener('click', onAction);
}

/** Fills a device <select> (cameras, microphones), labelled once permission is given, with `current` selected. */
export function fillDevicePicker(select: HTMLSelectElement, devices: MediaDeviceInfo[], current: string | undefined, noun: string): void {
  select.replaceChildren(
    ...devices.map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${noun} ${i + 1}`;
      o.selected = d.deviceId === current;
      return o;
    }),
  );
}
