"""Running the code the agents write, apart from the user's machine as far as it can be: see
``runner`` for what is and is not isolated."""

from .runner import Sandbox, isolation

__all__ = ["Sandbox", "isolation"]
