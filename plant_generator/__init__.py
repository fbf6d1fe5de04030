"""The plant generator: a plant of any scale, from a test's seconds to a
plant-year, built in bulk through the paths the services use
(docs/performance.md, "A plant-year")."""
