// A confirmation in a modal <dialog>: the browser traps focus inside it, Escape cancels, and
// focus returns to the button that opened it when it closes. `children` may hold inputs (the
// rotate grace); Enter in them confirms.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

interface ConfirmDialogProps {
  open: boolean;
  title: string;
  children?: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  error?: string | undefined;
  onConfirm: () => void;
  onCancel: () => void;
}

let dialogSerial = 0;

export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  danger,
  busy,
  error,
  onConfirm,
  onCancel,
}: ConfirmDialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const [titleId] = useState(() => `dialog-title-${++dialogSerial}`);
  const onCancelRef = useRef(onCancel);
  onCancelRef.current = onCancel;

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    // Escape fires `cancel` and then closes the dialog; keep our state in step with it.
    const onClose = () => onCancelRef.current();
    dialog.addEventListener('close', onClose);
    return () => dialog.removeEventListener('close', onClose);
  }, []);

  return (
    <dialog ref={ref} class="dialog" aria-labelledby={titleId}>
      {open && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (!busy) onConfirm();
          }}
        >
          <h2 id={titleId}>{title}</h2>
          <div class="dialog-body">{children}</div>
          {error && (
            <p class="note error" role="alert">
              {error}
            </p>
          )}
          <div class="dialog-actions">
            {/* Cancel first in the tab order and focused on open: a stray Enter does no harm. */}
            <button type="button" class="button" autoFocus onClick={() => ref.current?.close()}>
              Cancel
            </button>
            <button type="submit" class={`button ${danger ? 'danger' : 'primary'}`} disabled={busy}>
              {busy ? 'Working…' : confirmLabel}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}
