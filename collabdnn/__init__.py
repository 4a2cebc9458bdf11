"""CollabDNN: split DNN inference between a mobile agent and a cloud server.

Each model is cut into *units* (preprocessing, then one unit per layer group); a planner
places every unit on the mobile or the cloud side by a shortest path over
(unit, platform) nodes, and the two sides exchange losslessly encoded activations.
"""

__version__ = "0.1.0"
