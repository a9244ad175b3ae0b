"""Built-in methods, one file each, installed as `clbench.methods`."""
