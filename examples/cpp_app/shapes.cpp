#include "shapes.h"

#include <cmath>

Circle::Circle(Point centre, double radius) : Shape("circle"), centre_(centre), radius_(radius) {}

double Circle::area() const { return M_PI * radius_ * radius_; }

Polygon::Polygon(std::vector<Point> points) : Shape("polygon"), points_(std::move(points)) {}

double Polygon::area() const {
    double twice = 0;
    for (size_t i = 0; i < points_.size(); ++i) {
        const Point &a = points_[i], &b = points_[(i + 1) % points_.size()];
        twice += a.x * b.y - b.x * a.y;
    }
    return std::fabs(twice) / 2;
}

std::vector<std::unique_ptr<Shape>> make_shapes(int count) {
    std::vector<std::unique_ptr<Shape>> shapes;
    for (int i = 0; i < count; ++i) {
        if (i % 2)
            shapes.push_back(std::make_unique<Circle>(Point{double(i), 0}, i * 0.5));
        else
            shapes.push_back(std::make_unique<Polygon>(std::vector<Point>{{0, 0}, {double(i), 0}, {0, double(i)}}));
    }
    return shapes;
}
