"""The AT2 decision core (no Ray imports): observations -> surrogate -> acquisition -> decision."""
