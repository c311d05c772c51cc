"""The command-line layer: ssljax-train, -eval, -export and -import.

One module a command (train, eval, export, import_), each a thin program:
parse flags, call the library, report. `common` holds what they share
(one-line errors, exit codes). Nothing in the library imports this
package; the library's functions the commands call: ssljax.train
(`train_and_evaluate`) and ssljax.saved_runs (`evaluate`, `export`,
`import_weights`).

The console scripts start in `entry`, which installs the preemption
handler before anything imports JAX; this file imports nothing.
"""
