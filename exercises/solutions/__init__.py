"""Reference solutions of the exercises: what CI checks the exercises' tests against, so the
track can never rot. Read them after trying yourself."""
