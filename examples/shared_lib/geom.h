#ifndef GEOM_H
#define GEOM_H

struct vec3 {
    double x, y, z;
};

double vec3_dot(struct vec3 a, struct vec3 b);
struct vec3 vec3_cross(struct vec3 a, struct vec3 b);
#endif
