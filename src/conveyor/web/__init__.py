"""The HTTP face of Conveyor: the only package that imports the web framework."""
