"""The notebook face: the ``%wb`` magics, the live dashboard, the training plot.

Everything here is a thin layer over the API in ``workbench``; importing this package imports
neither IPython nor any engine until a piece of it is used.
"""
