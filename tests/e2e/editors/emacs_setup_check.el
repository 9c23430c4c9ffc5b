;;; emacs_setup_check.el --- vllm-ls.el against real eglot and lsp-mode, without a server  -*- lexical-binding: t; -*-

;; emacs --batch -Q -l tests/e2e/editors/emacs_setup_check.el
;; Environment: VLLM_LS_EMACS_EL (editors/emacs/vllm-ls.el), VLLM_LS_EMACS_OUT (a scratch
;; directory), VLLM_LS_EMACS_RESULT (JSON written here).
;; Byte-compiles vllm-ls.el with warnings as errors (with both clients loaded, as a user has
;; them), then reads back what each setup registered.

(require 'package)
(add-to-list 'package-directory-list "/usr/share/emacs/site-lisp/elpa")
(package-initialize)
(require 'json)
(require 'eglot)
(require 'lsp-mode)

(let* ((source (getenv "VLLM_LS_EMACS_EL"))
       (copy (expand-file-name "vllm-ls.el" (getenv "VLLM_LS_EMACS_OUT")))
       (byte-compile-error-on-warn t)
       result)
  (copy-file source copy t)
  (unless (byte-compile-file copy)
    (kill-emacs 2))
  (load (concat copy "c") nil t)

  (setq vllm-ls-command '("/venv/bin/vllm-ls")
        vllm-ls-engine-urls '("http://127.0.0.1:8000"))
  (push (cons :command (vllm-ls-server-command)) result)
  (push (cons :emptyOptions (json-serialize (vllm-ls-initialization-options))) result)
  (setq vllm-ls-settings '(:scheduling.debounceMs 150 :engine.url ["http://127.0.0.1:9000"]))
  (push (cons :options (json-serialize (vllm-ls-initialization-options))) result)

  (vllm-ls-eglot-setup '(python-mode))
  (let ((entry (assoc '(python-mode) eglot-server-programs)))
    (push (cons :eglotContact (format "%S" (funcall (cdr entry)))) result)
    (push (cons :eglotFirst (eq entry (car eglot-server-programs))) result))

  (vllm-ls-lsp-mode-setup)
  (let* ((client (gethash 'vllm-ls lsp-clients))
         (handler (gethash "vllm-ls/status" (lsp--client-notification-handlers client)))
         (status (make-hash-table :test #'equal)))
    (push (cons :addOn (lsp--client-add-on? client)) result)
    (push (cons :suggestCommand (commandp (quote vllm-ls-suggest))) result)
    (push (cons :activatesPython
                (and (funcall (lsp--client-activation-fn client) "a.py" 'python-mode) t))
          result)
    (push (cons :activatesText
                (and (funcall (lsp--client-activation-fn client) "a.txt" 'text-mode) t))
          result)
    (push (cons :lspInitOptions
                (json-serialize (funcall (lsp--client-initialization-options client))))
          result)
    (puthash "state" "ready" status)
    (puthash "lastLatencyMs" 412.4 status)
    (funcall handler nil status)
    (push (cons :statusText (vllm-ls-status-text)) result))

  (with-temp-file (getenv "VLLM_LS_EMACS_RESULT")
    (insert (json-encode (mapcar (lambda (pair) (cons (car pair) (or (cdr pair) :json-false)))
                                 result)))))
