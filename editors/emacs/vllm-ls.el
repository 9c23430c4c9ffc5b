;;; vllm-ls.el --- AI code completions from vLLM via vllm-ls  -*- lexical-binding: t; -*-

;; Package-Requires: ((emacs "27.1"))
;; Keywords: languages, tools

;;; Commentary:

;; vllm-ls is a language server that completes code with a model served
;; by vLLM.  Two ways to use it, pick one:
;;
;; eglot (built into Emacs 29; `elpa-eglot' on Debian's Emacs 28):
;;
;;   (require 'vllm-ls)
;;   (vllm-ls-eglot-setup)   ; then M-x eglot in a buffer of `vllm-ls-modes'
;;
;;   The suggestion is a candidate of `completion-at-point' (C-M-i, or
;;   company / corfu when you use them).  Eglot runs one server per major
;;   mode: with this setup vllm-ls is *the* server of those modes.
;;
;; lsp-mode:
;;
;;   (require 'vllm-ls)
;;   (vllm-ls-lsp-mode-setup)   ; then M-x lsp
;;
;;   vllm-ls is an add-on server, next to the language's own server.
;;   lsp-mode 9.0.1 and later show ghost text (`lsp-inline-completion-mode',
;;   turned on for servers with inline completion): RET accepts, M-n / M-p
;;   cycle, C-g dismisses.  `vllm-ls-suggest' asks at once (bind it to a
;;   key).  Older lsp-mode shows the suggestion as a completion candidate.
;;
;; A remote engine: (setq vllm-ls-engine-urls '("http://gpu-box:8000")).
;; Server settings (docs/configuration.md):
;;   (setq vllm-ls-settings '(:scheduling.debounceMs 300 :generation.maxLines 4))

;;; Code:

(require 'cl-lib)

(defgroup vllm-ls nil
  "AI code completions from vLLM through the vllm-ls language server."
  :group 'tools
  :prefix "vllm-ls-")

(defcustom vllm-ls-command '("vllm-ls")
  "The server program and its leading arguments, without `serve'.
For a virtual environment: (\"/path/to/venv/bin/vllm-ls\"), or
\(\"/path/to/venv/bin/python\" \"-m\" \"lsp_server\")."
  :type '(repeat string))

(defcustom vllm-ls-engine-urls nil
  "Remote vLLM OpenAI-compatible servers (URLs).
nil runs the engine inside the server process."
  :type '(repeat string))

(defcustom vllm-ls-settings nil
  "Server settings as a plist with dotted names, e.g.
\(:scheduling.debounceMs 300 :generation.maxLines 4).
Sent as `initializationOptions'; the names are those of docs/configuration.md.
JSON arrays are vectors: (:engine.url [\"http://gpu-box:8000\"])."
  :type 'plist)

(defcustom vllm-ls-modes
  '(python-mode python-ts-mode js-mode js-ts-mode
    typescript-mode typescript-ts-mode c-mode c-ts-mode c++-mode c++-ts-mode
    go-mode go-ts-mode rust-mode rust-ts-mode java-mode java-ts-mode
    ruby-mode ruby-ts-mode sh-mode bash-ts-mode lua-mode)
  "Major modes that get completions from vllm-ls."
  :type '(repeat symbol))

(defvar vllm-ls-status nil
  "The last `vllm-ls/status' notification, as a plist.
Keys: :state (\"loading\", \"ready\" or \"failed\"), :message, :engine,
:lastLatencyMs.")

(defvar vllm-ls-status-functions nil
  "Functions called with the status plist whenever the server reports it.")

(defun vllm-ls-server-command ()
  "The full command line that starts the server over stdio."
  (append vllm-ls-command
          (cl-loop for url in vllm-ls-engine-urls
                   append (list "--engine-url" url))
          '("serve")))

(defun vllm-ls-initialization-options ()
  "`initializationOptions': `vllm-ls-settings' as a JSON object.
A hash table: both clients send it as an object even when it is empty
\(nil would be sent as null, and lsp-mode may send a plist as an array)."
  (let ((object (make-hash-table :test #'equal)))
    (cl-loop for (key value) on vllm-ls-settings by #'cddr
             do (puthash (substring (symbol-name key) 1) value object))
    object))

(defun vllm-ls-status-text ()
  "A short status for the mode line: \"vllm-ls 412ms\", \"vllm-ls loading\"."
  (let ((state (plist-get vllm-ls-status :state))
        (latency (plist-get vllm-ls-status :lastLatencyMs)))
    (cond ((and (equal state "ready") (numberp latency))
           (format "vllm-ls %dms" (round latency)))
          (state (format "vllm-ls %s" state))
          (t "vllm-ls"))))

(defun vllm-ls--status-changed (status)
  "Record STATUS (a plist); tell the user once about each engine failure."
  (let ((repeated (equal (plist-get vllm-ls-status :message)
                         (plist-get status :message))))
    (setq vllm-ls-status status)
    (when (and (equal (plist-get status :state) "failed") (not repeated))
      (message "vllm-ls: the completion engine failed: %s"
               (plist-get status :message)))
    (run-hook-with-args 'vllm-ls-status-functions status)
    (force-mode-line-update t)))

;;;; eglot

(declare-function eglot--current-server-or-lose "eglot")
(defvar eglot-server-programs)

;;;###autoload
(defun vllm-ls-eglot-setup (&optional modes)
  "Make vllm-ls the eglot server of MODES (default `vllm-ls-modes')."
  (require 'eglot)
  (let ((modes (or modes vllm-ls-modes)))
    (setq eglot-server-programs
          (cons (cons modes #'vllm-ls--eglot-contact)
                (cl-remove-if
                 (lambda (entry) (eq (cdr entry) #'vllm-ls--eglot-contact))
                 eglot-server-programs)))))

(defun vllm-ls--eglot-contact (&optional _interactive)
  "The eglot contact, computed when eglot starts: later option changes apply."
  (append (vllm-ls-server-command)
          (list :initializationOptions (vllm-ls-initialization-options))))

(with-eval-after-load 'eglot
  (cl-defmethod eglot-handle-notification
    (_server (_method (eql vllm-ls/status)) &rest status &key &allow-other-keys)
    "Remember the engine's state (loading / ready / failed) for the mode line."
    (vllm-ls--status-changed status)))

;;;; lsp-mode

(declare-function lsp-register-client "lsp-mode")
(declare-function make-lsp-client "lsp-mode")
(declare-function lsp-stdio-connection "lsp-mode")
(declare-function lsp-configuration-section "lsp-mode")

(defun vllm-ls--lsp-mode-status (_workspace params)
  "lsp-mode's handler of `vllm-ls/status': PARAMS is a hash table (or a plist)."
  (vllm-ls--status-changed
   (if (hash-table-p params)
       (let (plist)
         (maphash (lambda (key value)
                    (setq plist (plist-put plist (intern (concat ":" key)) value)))
                  params)
         plist)
     params)))

(declare-function lsp-inline-completion-display "lsp-inline-completion")

;;;###autoload
(defun vllm-ls-suggest ()
  "Ask for a suggestion now: ghost text where lsp-mode has it, else a candidate."
  (interactive)
  (if (and (bound-and-true-p lsp-mode)
           (require 'lsp-inline-completion nil t)
           (fboundp 'lsp-inline-completion-display))
      (lsp-inline-completion-display)
    (completion-at-point)))

;;;###autoload
(defun vllm-ls-lsp-mode-setup ()
  "Register vllm-ls with lsp-mode as an add-on server for `vllm-ls-modes'."
  (require 'lsp-mode)
  (let ((handlers (make-hash-table :test #'equal)))
    (puthash "vllm-ls/status" #'vllm-ls--lsp-mode-status handlers)
    (lsp-register-client
     (make-lsp-client
      :new-connection (lsp-stdio-connection #'vllm-ls-server-command)
      :activation-fn (lambda (_file-name mode) (memq mode vllm-ls-modes))
      :add-on? t
      :priority -1
      :server-id 'vllm-ls
      :initialization-options #'vllm-ls-initialization-options
      :notification-handlers handlers))))

(provide 'vllm-ls)
;;; vllm-ls.el ends here
