"""The mobile side: classifies photos, runs its own units and offloads the rest."""
