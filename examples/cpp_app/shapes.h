#pragma once
#include <memory>
#include <string>
#include <vector>

struct Point {
    double x, y;
};

class Shape {
public:
    explicit Shape(std::string name) : name_(std::move(name)) {}
    virtual ~Shape() = default;
    virtual double area() const = 0;
    const std::string &name() const { return name_; }

private:
    std::string name_;
};

class Circle : public Shape {
public:
    Circle(Point centre, double radius);
    double area() const override;

private:
    Point centre_;
    double radius_;
};

class Polygon : public Shape {
public:
    explicit Polygon(std::vector<Point> points);
    double area() const override;

private:
    std::vector<Point> points_;
};

std::vector<std::unique_ptr<Shape>> make_shapes(int count);
