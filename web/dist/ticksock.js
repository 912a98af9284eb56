// placeholder: the compiled client library
