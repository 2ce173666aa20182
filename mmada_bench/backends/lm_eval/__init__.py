"""lm-eval backend: bridge LM (``mmada``), task-folder export, the registration hook, the runner side."""
