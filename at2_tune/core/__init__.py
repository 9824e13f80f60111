"""The AT2 decision core (no Ray imports): observations -> curve posterior -> policy -> decision."""
