"""Training, conversion and evaluation of Helcaraxe networks (the ``[train]`` extra).

``models``, ``convert`` and ``train`` need TensorFlow/Keras (``pip install auspex-helcaraxe[train]``);
``evaluate`` runs through the TFLite runtime only. The runtime never imports this package.
"""
