"""Built-in task families and sequences, installed as `clbench.tasks`."""
