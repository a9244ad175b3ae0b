"""A deliberately broken entry point: clbench must warn and carry on."""
raise ImportError("this plugin module is broken on purpose")
