package ring

// Name is documented.
const Name = "ring"
