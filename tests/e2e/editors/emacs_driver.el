;;; emacs_driver.el --- plays a user of editors/emacs/vllm-ls.el with eglot, in batch mode  -*- lexical-binding: t; -*-

;; emacs --batch -Q -l editors/emacs/vllm-ls.el -l tests/e2e/editors/emacs_driver.el
;; Environment: VLLM_LS_EMACS_CMD (JSON list: the server command without `serve'),
;; VLLM_LS_EMACS_FILE (the Python file), VLLM_LS_EMACS_RESULT (JSON written here),
;; VLLM_LS_EMACS_TIMEOUT_S.

(defun driver-goto-fibonacci-body ()
  "Where the user types: the end of the indented empty line inside `fibonacci'."
  (goto-char (point-min))
  (re-search-forward "^def fibonacci(n):\n")
  (end-of-line))

(require 'package)
;; -Q skips Debian's site start-up, which is what puts its elpa-* packages in reach.
(add-to-list 'package-directory-list "/usr/share/emacs/site-lisp/elpa")
(package-initialize)
(require 'json)
(require 'eglot)
(require 'vllm-ls)

(defvar driver-deadline (+ (float-time) (string-to-number (or (getenv "VLLM_LS_EMACS_TIMEOUT_S") "600"))))
(defvar driver-result (list :ok :json-false :tries 0))

(defun driver-finish (ok message)
  (setq driver-result (plist-put driver-result :ok (if ok t :json-false)))
  (setq driver-result (plist-put driver-result :message message))
  (setq driver-result (plist-put driver-result :text (buffer-substring-no-properties (point-min) (point-max))))
  (setq driver-result (plist-put driver-result :status vllm-ls-status))
  (with-temp-file (getenv "VLLM_LS_EMACS_RESULT")
    (insert (json-encode driver-result)))
  ;; shutdown stops the engine, which takes longer than eglot's default patience.
  (ignore-errors (eglot-shutdown (eglot-current-server) nil 60))
  (kill-emacs (if ok 0 1)))

(defun driver-wait-until (predicate what)
  (while (not (funcall predicate))
    (when (> (float-time) driver-deadline)
      (driver-finish nil (format "timed out waiting for %s (status %S)" what vllm-ls-status)))
    (accept-process-output nil 0.2)))

(condition-case err
    (progn
      (setq vllm-ls-command (append (json-read-from-string (getenv "VLLM_LS_EMACS_CMD")) nil))
      ;; Completion requests are synchronous in eglot; on a loaded 2-core machine the small CPU
      ;; engine can take longer than jsonrpc's 10 s default.
      (setq jsonrpc-default-request-timeout 180)
      (vllm-ls-eglot-setup)
      (find-file (getenv "VLLM_LS_EMACS_FILE"))
      (setq driver-result (plist-put driver-result :mode (symbol-name major-mode)))
      ;; What M-x eglot does, without its prompts.
      (apply #'eglot (eglot--guess-contact))
      (driver-wait-until (lambda () (eglot-current-server)) "eglot to connect")
      (driver-wait-until (lambda () (member (plist-get vllm-ls-status :state) '("ready" "failed")))
                         "the engine to be ready")
      (unless (equal (plist-get vllm-ls-status :state) "ready")
        (driver-finish nil (format "engine failed: %s" (plist-get vllm-ls-status :message))))
      (setq driver-result (plist-put driver-result :capf (format "%S" completion-at-point-functions)))
      (let ((before (buffer-substring-no-properties (point-min) (point-max))))
        (setq driver-result (plist-put driver-result :before before))
        (while (equal before (buffer-substring-no-properties (point-min) (point-max)))
          (when (> (float-time) driver-deadline)
            (driver-finish nil "no completion before the deadline"))
          (driver-goto-fibonacci-body)
          (setq driver-result (plist-put driver-result :tries (1+ (plist-get driver-result :tries))))
          ;; C-M-i: with a single candidate, completion-at-point inserts it and eglot's exit
          ;; function applies the item's text edit.
          (completion-at-point)
          (accept-process-output nil 0.2)))
      (driver-finish t "completed"))
  (error (driver-finish nil (format "error: %S" err))))
