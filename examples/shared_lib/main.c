#include <stdio.h>

#include "geom.h"

int main(void) {
    struct vec3 a = {1, 0, 0}, b = {0, 1, 0};
    struct vec3 c = vec3_cross(a, b);
    printf("cross = (%g, %g, %g), dot = %g\n", c.x, c.y, c.z, vec3_dot(a, b));
    return 0;
}
