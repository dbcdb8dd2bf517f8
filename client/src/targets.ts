/**
 * The actor page's target gallery: lists the faces the reenactor can render
 * (bundled and uploaded), switches the session's target, and uploads new
 * photos by drag and drop or file picker, with a preview card per upload that
 * ends either as a selectable target or showing the coded error. Uploads are
 * the room's own (the server lists and shows them only with its token) and
 * can be deleted from their card.
 *
 * Files are checked in the browser first (type and the 10 MB limit) so a
 * wrong file fails at once without an upload; the server checks again and
 * decides about faces (E_NO_FACE).
 */
import { CodedError, ErrorCodes } from '../../shared/errors.ts';
import type { TargetInfo } from '../../shared/protocol.ts';
import { describeCode, httpError, toCoded } from './messages.ts';
import type { RoomClient } from './room-client.ts';

export const UPLOAD_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;

export interface GalleryElements {
  gallery: HTMLElement;
  dropzone: HTMLElement;
  input: HTMLInputElement;
  note: HTMLElement;
}

/** Refuses files the server would refuse anyway, before uploading them. */
export function checkUpload(file: File): CodedError | null {
  if (!(UPLOAD_TYPES as readonly string[]).includes(file.type)) {
    return new CodedError(ErrorCodes.MEDIA_INVALID, `${file.type || 'unknown type'} is not a JPEG, PNG or WebP image`);
  }
  if (file.size > MAX_UPLOAD_BYTES) return new CodedError(ErrorCodes.MEDIA_TOO_LARGE, `${(file.size / 1048576).toFixed(1)} MB is over the 10 MB limit`);
  if (file.size === 0) return new CodedError(ErrorCodes.MEDIA_INVALID, 'the file is empty');
  return null;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class TargetGallery {
  readonly #els: GalleryElements;
  readonly #client: () => RoomClient | undefined;
  readonly #targets = new Map<string, TargetInfo>();
  #current = '';
  #uploads = 0;

  constructor(els: GalleryElements, client: () => RoomClient | undefined) {
    this.#els = els;
    this.#client = client;
    const { dropzone, input } = els;
    input.addEventListener('change', () => {
      for (const f of input.files ?? []) void this.upload(f);
      input.value = '';
    });
    dropzone.addEventListener('dragover', (e) => {
      e.preventDefault();
      dropzone.classList.add('over');
    });
    dropzone.addEventListener('dragleave', () => dropzone.classList.remove('over'));
    dropzone.addEventListener('drop', (e) => {
      e.preventDefault();
      dropzone.classList.remove('over');
      for (const f of e.dataTransfer?.files ?? []) void this.upload(f);
    });
  }

  get current(): string {
    return this.#current;
  }

  /** Loads the list over signalling (actor's own session), falling back to GET /api/targets. */
  async refresh(): Promise<void> {
    try {
      const client = this.#client();
      let list: { targets: TargetInfo[]; current?: string };
      try {
        if (!client) throw new CodedError(ErrorCodes.INVALID_STATE, 'not connected');
        list = await client.signal.request('listTargets', {});
      } catch (err) {
        if (!(err instanceof CodedError) || (err.code !== ErrorCodes.UNKNOWN_METHOD && err.code !== ErrorCodes.INVALID_STATE)) throw err;
        const token = client?.token;
        const res = await fetch('/api/targets', { cache: 'no-store', headers: token ? { authorization: `Bearer ${token}` } : {} });
        if (!res.ok) throw await httpError(res);
        const body = (await res.json()) as TargetInfo[] | { targets: TargetInfo[]; current?: string };
        list = Array.isArray(body) ? { targets: body } : body;
      }
      this.#targets.clear();
      for (const t of list.targets) this.#targets.set(t.id, t);
      if (list.current) this.#current = list.current;
      this.#render();
      this.#note('');
    } catch (err) {
      const { code, message } = toCoded(err);
      if (code === ErrorCodes.NOT_FOUND) this.#note('This server has no target gallery (yet): the output uses its default target.');
      else this.#note(`${code}: ${describeCode(code)} (${message})`, code);
    }
  }

  setCurrent(id: string): void {
    this.#current = id;
    for (const card of this.#els.gallery.querySelectorAll<HTMLElement>('.target[data-id]')) {
      card.setAttribute('aria-selected', String(card.dataset['id'] === id));
    }
  }

  async select(id: string): Promise<void> {
    const client = this.#client();
    if (!client) {
      this.#note('Not connected: the target can be changed once the session is live.', ErrorCodes.INVALID_STATE);
      return;
    }
    try {
      const res = await client.signal.request('setTarget', { targetId: id });
      this.setCurrent(res.targetId);
      this.#note('');
    } catch (err) {
      const { code, message } = toCoded(err);
      this.#note(`${code}: ${describeCode(code)} (${message})`, code);
    }
  }

  async upload(file: File): Promise<void> {
    const n = ++this.#uploads;
    const card = el('div', 'target pending');
    card.dataset['upload'] = String(n);
    const preview = URL.createObjectURL(file);
    const img = el('img', '');
    img.alt = '';
    img.src = preview;
    const badge = el('span', 'badge', 'uploading…');
    card.append(img, el('span', 'name', file.name), badge);
    this.#els.gallery.prepend(card);
    const fail = (err: unknown): void => {
      const { code, message } = toCoded(err);
      card.className = 'target error';
      card.dataset['code'] = code;
      badge.textContent = code;
      card.title = message;
      const why = el('span', 'why', describeCode(code));
      const dismiss = el('button', 'dismiss', '×');
      dismiss.title = 'dismiss';
      dismiss.addEventListener('click', () => {
        card.remove();
        URL.revokeObjectURL(preview);
      });
      card.append(why, dismiss);
    };
    const refused = checkUpload(file);
    if (refused) {
      img.removeAttribute('src');
      fail(refused);
      return;
    }
    try {
      const client = this.#client();
      if (!client) throw new CodedError(ErrorCodes.INVALID_STATE, 'not connected; try again when the session is live');
      const res = await fetch('/api/targets', {
        method: 'POST',
        headers: { 'content-type': file.type, authorization: `Bearer ${client.token}` },
        body: file,
      });
      if (!res.ok) throw await httpError(res);
      const { target } = (await res.json()) as { target: TargetInfo };
      this.#targets.set(target.id, target);
      card.remove();
      URL.revokeObjectURL(preview);
      this.#render();
      await this.select(target.id);
    } catch (err) {
      fail(err);
    }
  }

  #note(text: string, code?: string): void {
    this.#els.note.textContent = text;
    if (code) this.#els.note.dataset['code'] = code;
    else delete this.#els.note.dataset['code'];
  }

  #render(): void {
    const { gallery } = this.#els;
    for (const c of gallery.querySelectorAll('.target[data-id]')) c.remove();
    const token = this.#client()?.token;
    for (const t of this.#targets.values()) {
      const card = el('div', 'target');
      card.dataset['id'] = t.id;
      card.title = `${t.name} (${t.kind}, ${t.source})`;
      card.setAttribute('aria-selected', String(t.id === this.#current));
      const pick = el('button', 'pick');
      pick.type = 'button';
      const img = el('img', '');
      img.alt = '';
      img.loading = 'lazy';
      // An upload's preview is private to this room: the image request carries the room's token.
      img.src = t.source === 'upload' && token ? `${t.thumbnailUrl}?token=${encodeURIComponent(token)}` : t.thumbnailUrl;
      pick.append(img, el('span', 'name', t.name));
      pick.addEventListener('click', () => void this.select(t.id));
      card.append(pick);
      if (t.source === 'upload') {
        const del = el('button', 'dismiss', '×');
        del.type = 'button';
        del.title = 'delete this upload from the server';
        del.addEventListener('click', () => void this.remove(t.id));
        card.append(del);
      }
      gallery.append(card);
    }
  }

  /** Deletes one of this room's uploads from the server (the room falls back to the default target if it was in use). */
  async remove(id: string): Promise<void> {
    const client = this.#client();
    if (!client) {
      this.#note('Not connected: uploads can be deleted once the session is live.', ErrorCodes.INVALID_STATE);
      return;
    }
    try {
      const res = await fetch(`/api/targets/${encodeURIComponent(id)}`, { method: 'DELETE', headers: { authorization: `Bearer ${client.token}` } });
      if (!res.ok) throw await httpError(res);
      this.#targets.delete(id);
      this.#render();
      await this.refresh();
    } catch (err) {
      const { code, message } = toCoded(err);
      this.#note(`${code}: ${describeCode(code)} (${message})`, code);
    }
  }
}
