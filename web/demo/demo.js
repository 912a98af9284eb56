// placeholder: the demo script
